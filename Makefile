# The two commands a newcomer needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= .data
# The test InfluxDB 1.x gets a port and data directory of its own, away from any real one.
TEST_INFLUX_PORT ?= 18086

.PHONY: run test bench chaos image lint format venv services-test migrate clean

$(BIN)/.installed: requirements/base.txt requirements/dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@

venv: $(BIN)/.installed

$(DATA_DIR)/secret_key:
	@mkdir -p -m 700 $(DATA_DIR)
	@umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	@chmod 600 $@

## make run: the whole ingestor on embedded defaults or your settings (scripts/run.sh): InfluxDB
## (installed and started when missing, stopped on exit), migrate, static files, the first-run
## admin, the Procfile's processes (MQTT listener only when MQTT is configured), then a banner.
## INFLUX_PORT, WEB_PORT and FLOWER_PORT move it off the default ports. SHAPE=home (default,
## small beside HA; FLOWER=1 adds Flower) or SHAPE=scale (the Procfile's separate roles).
run: venv $(DATA_DIR)/secret_key
	@scripts/run.sh

## make test: start what the tests need (a private InfluxDB 1.x), lint, run every test.
test: venv services-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TEST_INFLUX_URL=http://127.0.0.1:$(TEST_INFLUX_PORT) TEST_SCREENSHOT_DIR=$(abspath $(DATA_DIR))/screenshots \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: the pipeline benchmark on this machine's services, then the footprint of what
## `make run` starts, idle and at 100 events/s (docs/benchmarks.md). FOOTPRINT_ARGS=--shape scale.
bench: venv services-test
	BENCH_INFLUX_URL=http://127.0.0.1:$(TEST_INFLUX_PORT) $(BIN)/python bench/pipeline.py --write-docs $(BENCH_ARGS)
	$(BIN)/python bench/footprint.py --write-docs $(FOOTPRINT_ARGS)

## make chaos: the seeded chaos run on private services (docs/reliability.md); SEED=, MINUTES=.
MINUTES ?= 10
CHAOS_DATABASES ?= postgres sqlite
chaos: venv services-test
	@seed=$${SEED:-$$(shuf -i 1-999999 -n 1)}; echo "chaos seed: $$seed"; \
	for database in $(CHAOS_DATABASES); do \
		$(BIN)/python -m tests.chaos --seed $$seed --minutes $(MINUTES) --database $$database \
			$(CHAOS_ARGS) || exit 1; done

IMAGE ?= localhost/ha-ingestor:latest
## make image: build the container image (podman on a local Debian base), then smoke-check it.
image:
	scripts/build-image.sh build $(IMAGE)
	scripts/build-image.sh smoke $(IMAGE)

services-test:
	@command -v victoria-metrics >/dev/null || { \
		apt-get update >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends victoria-metrics >/dev/null; }
	@command -v promtool >/dev/null || { \
		apt-get update >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
	@command -v chromium >/dev/null && test -x /usr/bin/chromedriver || { \
		apt-get update >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; }
	scripts/influxdb.sh $(TEST_INFLUX_PORT) $(DATA_DIR)/influxdb-test

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(DATA_DIR)
