#!/usr/bin/env bash
# `make run`: the whole ingestor on one machine, on embedded defaults or your settings.
#   InfluxDB  INFLUX_URL, else a private InfluxDB 1.x on 127.0.0.1:INFLUX_PORT (default 8086)
#             under DATA_DIR/influxdb, installed from Debian's `influxdb` package when missing
#             (as root) and stopped again when this script ends
#   web       127.0.0.1:WEB_PORT (default 8000; or WEB_BIND), Flower on FLOWER_PORT (5555)
#   MQTT      the MQTT listener runs only when MQTT_URL or MQTT_SUBSCRIPTIONS is set
#   SHAPE     home (default): small enough to run beside Home Assistant: one web process with
#             WEB_THREADS threads, one worker (prefork, WORKER_CONCURRENCY=2) with beat inside
#             it (-B), the listeners; Flower only with FLOWER=1 (docs/benchmarks.md).
#             scale: the Procfile as it is: separate beat, WEB_WORKERS and WORKER_CONCURRENCY 2,
#             Flower (the container image and several machines use this shape).
# Ctrl-C or SIGTERM stops every process it started. It prints one block once /ready answers.
#   scripts/run.sh --processes    prints the Procfile entries it would start, and exits
set -euo pipefail
cd "$(dirname "$0")/.."

export DATA_DIR="$(realpath -m "${DATA_DIR:-.data}")"
INFLUX_PORT="${INFLUX_PORT:-8086}"
export WEB_BIND="${WEB_BIND:-127.0.0.1:${WEB_PORT:-8000}}"
export FLOWER_PORT="${FLOWER_PORT:-5555}"
export LOG_FORMAT="${LOG_FORMAT:-console}"
export PATH="$PWD/.venv/bin:$PATH"
manage() { python manage.py "$@"; }

influxd_pid="" banner_pid="" honcho_pid=""
stop_pid() {  # stop_pid PID: SIGTERM, then wait for it to be gone (SIGKILL after 20 s)
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
    set +e  # a process already gone must not end the cleanup early
    if [ -n "$banner_pid" ]; then kill -TERM "$banner_pid" 2>/dev/null; fi
    if [ -n "$honcho_pid" ]; then stop_pid "$honcho_pid"; fi
    if [ -n "$influxd_pid" ]; then
        echo "run: stopping the InfluxDB it started (pid $influxd_pid)"
        stop_pid "$influxd_pid"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

influx_answers() { curl -fsS -o /dev/null "http://127.0.0.1:${INFLUX_PORT}/ping" 2>/dev/null; }

start_influxdb() {
    export INFLUX_URL="http://127.0.0.1:${INFLUX_PORT}"
    if influx_answers; then
        echo "run: using the InfluxDB already answering at $INFLUX_URL (left running on exit)"
        return
    fi
    if ! command -v influxd >/dev/null && { [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; }; then
        echo "run: InfluxDB 1.x is not installed: install it (sudo apt-get install influxdb) or set INFLUX_URL to one you run, then make run again." >&2
        exit 1
    fi
    rm -f "$DATA_DIR/influxdb/influxd.pid"
    if ! scripts/influxdb.sh "$INFLUX_PORT" "$DATA_DIR/influxdb"; then
        influxd_pid="$(cat "$DATA_DIR/influxdb/influxd.pid" 2>/dev/null || true)"
        echo "run: InfluxDB could not be installed or started (see above): install Debian's influxdb package or set INFLUX_URL, then make run again." >&2
        exit 1
    fi
    influxd_pid="$(cat "$DATA_DIR/influxdb/influxd.pid")"
}

secret_key() {
    [ -n "${SECRET_KEY:-}${SECRET_KEY_FILE:-}" ] && return
    export SECRET_KEY_FILE="$DATA_DIR/secret_key"
    [ -s "$SECRET_KEY_FILE" ] && return
    (umask 077 && python -c "import secrets; print(secrets.token_urlsafe(50))" >"$SECRET_KEY_FILE")
}

SHAPE="${SHAPE:-home}"
case "$SHAPE" in
    home | scale) ;;
    *) echo "run: SHAPE=$SHAPE: expected home (one machine beside HA) or scale (the Procfile)" >&2
       exit 1 ;;
esac
if [ "$SHAPE" = scale ]; then FLOWER="${FLOWER:-1}"; fi
case "${FLOWER:=0}" in
    0 | 1) ;;
    *) echo "run: FLOWER=$FLOWER: expected 1 (start Flower) or 0" >&2; exit 1 ;;
esac
if [ "$SHAPE" = home ]; then
    # Two worker children, not one: on the embedded broker one child takes a task only every
    # ~2 s (docs/benchmarks.md, footprint), too slow for 100 events/s.
    export WEB_WORKERS="${WEB_WORKERS:-1}" WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-2}"
fi

process_names() {
    local names="web worker listener_homeassistant"
    # beat runs inside the worker in the home shape (worker -B: ~50 MiB PSS less).
    if [ "$SHAPE" = scale ]; then names="$names beat"; fi
    if [ "$FLOWER" = 1 ]; then names="$names flower"; fi
    # Nothing to listen to without an MQTT broker: no process logging connection errors forever.
    if [ -n "${MQTT_URL:-}${MQTT_SUBSCRIPTIONS:-}" ]; then names="$names listener_mqtt"; fi
    echo "$names"
}

process_file() {  # the Procfile, or for the home shape the Procfile's lines made small
    if [ "$SHAPE" = scale ]; then echo Procfile && return; fi
    # The options added last win (gunicorn's argparse, celery's click): the Procfile stays the
    # one place each command is written. The prefork pool keeps acks_late, reject_on_worker_lost
    # and both time limits exactly as in the scale shape; threads serve the web requests; beat
    # runs inside the worker (-B: a forked process sharing the worker's pages).
    sed -e '/^web:/ s/$/ --threads ${WEB_THREADS:-4}/' \
        -e '/^worker:/ s/$/ --beat/' Procfile >"$DATA_DIR/Procfile.home"
    echo "$DATA_DIR/Procfile.home"
}

if [ "${1:-}" = "--processes" ]; then process_names && exit 0; fi
if [ "${1:-}" = "--process-file" ]; then mkdir -p "$DATA_DIR" && cat "$(process_file)" && exit 0; fi
mkdir -p "$DATA_DIR"
[ -z "${INFLUX_URL:-}" ] && start_influxdb
secret_key
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$DATA_DIR/metrics}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
manage migrate --noinput -v 0
manage collectstatic --noinput -v 0
manage ensure_influx_database
manage ensure_admin

web_host="${WEB_BIND%:*}"
case "$web_host" in "" | 0.0.0.0 | "[::]") web_host=127.0.0.1 ;; esac
flower_host="${FLOWER_ADDRESS:-127.0.0.1}"
case "$flower_host" in 0.0.0.0 | "[::]") flower_host=127.0.0.1 ;; esac
flower_url="http://${flower_host}:${FLOWER_PORT}"
[ "$FLOWER" = 1 ] || flower_url=""  # the banner then says how to start it
manage startup_banner --web-url "http://${web_host}:${WEB_BIND##*:}" --flower-url "$flower_url" &
banner_pid=$!

# honcho runs in the background so that this shell's traps run at once on a signal (bash defers
# a trap while a foreground child runs); honcho stops its processes on SIGTERM. In a session of
# its own: Ctrl-C reaches the whole foreground group, and honcho crashes on a second signal
# arriving while it reports the first, leaving its processes behind; this way it gets just one.
procfile="$(process_file)"
# shellcheck disable=SC2046 # one word per process name
setsid honcho start -f "$procfile" $(process_names) &
honcho_pid=$!
trap 'kill -TERM "$honcho_pid" 2>/dev/null || true' INT TERM
status=0
while kill -0 "$honcho_pid" 2>/dev/null; do
    wait "$honcho_pid" && status=0 || status=$?
done
honcho_pid=""
exit "$status"
