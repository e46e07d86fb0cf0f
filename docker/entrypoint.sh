#!/bin/sh
# Entry point of every ingestor container. It prepares what each container needs of its own,
# then replaces itself (exec) with the role's process, so that process receives `docker stop`'s
# SIGTERM directly. The roles mirror the Procfile, with container defaults (listen on every
# interface); anything else is run as given, e.g. `manage createsuperuser` or `bash`.
set -eu

# prometheus_client's multiprocess mode sums every file in this directory, and a restarted
# container keeps its /tmp: files of the previous run would be counted again. Empty it, never
# remove it (it may be a mounted tmpfs).
metrics_dir="${PROMETHEUS_MULTIPROC_DIR:-/tmp/metrics}"
export PROMETHEUS_MULTIPROC_DIR="$metrics_dir"
if [ -d "$metrics_dir" ]; then
    find "$metrics_dir" -mindepth 1 -delete
else
    mkdir -p "$metrics_dir"
fi

role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
    web)
        # /dev/shm: gunicorn's worker heartbeat files must not sit on a slow overlay disk.
        exec gunicorn ingestor_project.wsgi \
            --bind "${WEB_BIND:-0.0.0.0:8000}" --workers "${WEB_WORKERS:-2}" \
            --access-logfile - --graceful-timeout "${WEB_GRACEFUL_TIMEOUT:-20}" \
            --logger-class ingestor_project.gunicorn_logging.GunicornLogger \
            --worker-tmp-dir /dev/shm "$@"
        ;;
    worker)
        exec celery -A ingestor_project worker \
            -Q "${CELERY_INGEST_QUEUE:-ingest},${CELERY_MAINTENANCE_QUEUE:-maintenance}" \
            --concurrency "${WORKER_CONCURRENCY:-2}" -l "${LOG_LEVEL:-INFO}" "$@"
        ;;
    beat)
        exec celery -A ingestor_project beat -l "${LOG_LEVEL:-INFO}" "$@"
        ;;
    listener-homeassistant | listener_homeassistant)
        exec python manage.py listen_homeassistant "$@"
        ;;
    listener-mqtt | listener_mqtt)
        exec python manage.py listen_mqtt "$@"
        ;;
    flower)
        python manage.py flower_guard --address="${FLOWER_ADDRESS:-0.0.0.0}"
        exec celery -A ingestor_project flower \
            --address="${FLOWER_ADDRESS:-0.0.0.0}" --port="${FLOWER_PORT:-5555}" "$@"
        ;;
    migrate)
        # The one-shot step before the long-lived roles start: Django's tables, then the
        # InfluxDB 1.x database (API v2 buckets belong to the operator; this only pings).
        python manage.py migrate --noinput
        exec python manage.py ensure_influx_database
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
