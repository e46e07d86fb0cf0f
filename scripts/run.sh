#!/usr/bin/env bash
# `make run`: the whole ingestor on one machine, on embedded defaults or your settings.
#   InfluxDB  INFLUX_URL, else a private InfluxDB 1.x on 127.0.0.1:INFLUX_PORT (default 8086)
#             under DATA_DIR/influxdb, installed from Debian's `influxdb` package when missing
#             (as root) and stopped again when this script ends
#   web       127.0.0.1:WEB_PORT (default 8000; or WEB_BIND), Flower on FLOWER_PORT (5555)
#   MQTT      the MQTT listener runs only when MQTT_URL or MQTT_SUBSCRIPTIONS is set
#   SHAPE     home (default): small enough to run beside Home Assistant: one web process with
#             WEB_THREADS threads, one worker (prefork, WORKER_CONCURRENCY=1) that sends beat's
#             schedule itself, the listeners; Flower only with FLOWER=1 (docs/benchmarks.md).
#             scale: the Procfile as it is: separate beat, WEB_WORKERS and WORKER_CONCURRENCY 2,
#             Flower (the container image and several machines use this shape).
#   .env      KEY=value lines read first, as honcho and foreman do (the environment wins)
# Ctrl-C or SIGTERM stops every process it started. It prints one block once /ready answers.
#   scripts/run.sh --processes    prints the Procfile entries it would start, and exits
set -euo pipefail
cd "$(dirname "$0")/.."

load_env_file() {  # load_env_file FILE: export its KEY=value lines not already set, unexpanded
    local line key value
    while IFS= read -r line || [ -n "$line" ]; do
        [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
        key="${BASH_REMATCH[2]}" value="${BASH_REMATCH[3]}"
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
        [ -n "${!key+set}" ] || export "$key=$value"
    done <"$1"
}
if [ -f .env ]; then load_env_file .env; fi

export DATA_DIR="$(realpath -m "${DATA_DIR:-.data}")"
INFLUX_PORT="${INFLUX_PORT:-8086}"
export WEB_BIND="${WEB_BIND:-127.0.0.1:${WEB_PORT:-8000}}"
export FLOWER_PORT="${FLOWER_PORT:-5555}"
export LOG_FORMAT="${LOG_FORMAT:-console}" PYTHONUNBUFFERED=1
export PATH="$PWD/.venv/bin:$PATH"
manage() { python manage.py "$@"; }

influxd_pid="" banner_pid=""
declare -A started=()  # process id -> Procfile name, for what is running
# --- the processes ---------------------------------------------------------------------------
# A few lines of shell supervise them, not honcho (~20 MiB and ten wake-ups a second of its own;
# docs/benchmarks.md): each Procfile line runs in a session of its own, its output lines
# prefixed with its name. Ctrl-C reaches the terminal's whole foreground group: only this
# script and the prefixers are in it, so every process gets exactly one SIGTERM, from here.
STOP_SECONDS=20  # then SIGKILL (gunicorn's graceful timeout is 20 s)
name_width=0

prefix() {  # prefix NAME: copy stdin to stdout, each line starting "NAME | "
    trap '' INT TERM  # outlive a Ctrl-C: the process may still log while it stops
    exec sed -u "s/^/$(printf "%-${name_width}s |" "$1") /"
}

start_process() {  # start_process NAME: the process file's line NAME
    local command
    command="$(sed -n "s/^$1:[[:space:]]*//p" "$procfile")"
    setsid bash -c "$command" </dev/null > >(prefix "$1") 2>&1 &
    started[$!]="$1"
    echo "run: started $1 (pid $!)"
}

stop_pids() {  # stop_pids PID...: SIGTERM to each, SIGKILL (and to its session) after STOP_SECONDS
    local pid waited=0 left=("$@")
    for pid in "${left[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    while [ "${#left[@]}" -gt 0 ] && [ "$waited" -lt $((STOP_SECONDS * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
        for pid in "${!left[@]}"; do kill -0 "${left[$pid]}" 2>/dev/null || unset "left[$pid]"; done
    done
    for pid in "${left[@]}"; do
        echo "run: ${started[$pid]:-pid $pid} did not stop within ${STOP_SECONDS} s: killing it" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
}
stop_processes() { stop_pids "${!started[@]}"; started=(); }

cleanup() {
    set +e  # a process already gone must not end the cleanup early
    if [ -n "$banner_pid" ]; then kill -TERM "$banner_pid" 2>/dev/null; fi
    stop_processes
    if [ -n "$influxd_pid" ]; then
        echo "run: stopping the InfluxDB it started (pid $influxd_pid)"
        stop_pids "$influxd_pid"
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
    # One worker child writes a few hundred events/s (docs/benchmarks.md, footprint).
    export WEB_WORKERS="${WEB_WORKERS:-1}" WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-1}"
fi

process_names() {
    local names="web worker listener_homeassistant"
    # The home shape's worker sends beat's schedule itself (--send-periodic-tasks): no beat.
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
    # and both time limits exactly as in the scale shape; threads serve the web requests; the
    # worker's own timer sends beat's schedule (ingestor_project/periodic_tasks.py), where
    # --beat would fork a process of its own for it.
    sed -e '/^web:/ s/$/ --threads ${WEB_THREADS:-4}/' \
        -e '/^worker:/ s/$/ --send-periodic-tasks/' Procfile >"$DATA_DIR/Procfile.home"
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

procfile="$(process_file)"
for name in $(process_names); do
    if [ "${#name}" -gt "$name_width" ]; then name_width="${#name}"; fi
done
# A signal while they start: this script exits (its traps above) and stops what it started. A
# child forked but not yet running its program has these traps too, so it exits as well.
for name in $(process_names); do start_process "$name"; done
stopping=""
trap 'stopping=1' INT TERM  # wait -n returns at once on a trapped signal
status=0
while [ -z "$stopping" ]; do
    exited=""
    wait -n -p exited "${!started[@]}" && status=0 || status=$?
    if [ -z "$stopping" ] && [ -n "$exited" ]; then
        echo "run: ${started[$exited]} exited with status $status: stopping the others" >&2
        unset "started[$exited]"
        [ "$status" != 0 ] || status=1  # the processes run until stopped: any exit is a failure
        break
    fi
done
[ -z "$stopping" ] || status=0
exit "$status"
