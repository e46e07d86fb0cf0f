# The two commands a newcomer needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= .data
# The test InfluxDB 1.x gets a port and data directory of its own, away from any real one.
TEST_INFLUX_PORT ?= 18086

.PHONY: run test bench image lint format venv services-test migrate clean

$(BIN)/.installed: requirements/base.txt requirements/dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@

venv: $(BIN)/.installed

$(DATA_DIR)/secret_key:
	@mkdir -p $(DATA_DIR)
	@$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	@chmod 600 $@

## make run: migrate and start every Procfile process on embedded defaults (or your settings).
run: venv $(DATA_DIR)/secret_key
	@export PATH="$(CURDIR)/$(BIN):$$PATH" LOG_FORMAT="$${LOG_FORMAT:-console}"; \
	if [ -z "$$SECRET_KEY$$SECRET_KEY_FILE" ]; then export SECRET_KEY_FILE=$(DATA_DIR)/secret_key; fi; \
	if [ -z "$$INFLUX_URL" ] && command -v influxd >/dev/null; then \
		scripts/influxdb.sh 8086 $(DATA_DIR)/influxdb; fi; \
	export PROMETHEUS_MULTIPROC_DIR="$${PROMETHEUS_MULTIPROC_DIR:-$(DATA_DIR)/metrics}"; \
	rm -rf "$$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py ensure_influx_database && \
	exec $(BIN)/honcho start -f Procfile

## make test: start what the tests need (a private InfluxDB 1.x), lint, run every test.
test: venv services-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TEST_INFLUX_URL=http://127.0.0.1:$(TEST_INFLUX_PORT) $(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: the pipeline benchmark on this machine's services (docs/benchmarks.md).
bench: venv services-test
	BENCH_INFLUX_URL=http://127.0.0.1:$(TEST_INFLUX_PORT) $(BIN)/python bench/pipeline.py --write-docs $(BENCH_ARGS)

IMAGE ?= localhost/ha-ingestor:latest
## make image: build the container image (podman on a local Debian base), then smoke-check it.
image:
	scripts/build-image.sh build $(IMAGE)
	scripts/build-image.sh smoke $(IMAGE)

services-test:
	@command -v victoria-metrics >/dev/null || { \
		apt-get update >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends victoria-metrics >/dev/null; }
	scripts/influxdb.sh $(TEST_INFLUX_PORT) $(DATA_DIR)/influxdb-test

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(DATA_DIR)
