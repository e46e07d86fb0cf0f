"""Settings for the Home Assistant Activity Ingestor.

Every value comes from the environment through the strict helpers in ``env.py`` (12-factor);
``.env.example`` lists each variable. With nothing set, a development setup runs on embedded
defaults: SQLite, the embedded (file-based) Celery broker and the built-in Home Assistant simulator.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

from ingestor_project.component_config import component_config
from ingestor_project.django_base import (  # noqa: F401 - settings Django reads from here
    DEFAULT_AUTO_FIELD,
    INSTALLED_APPS,
    LANGUAGE_CODE,
    MIDDLEWARE,
    ROOT_URLCONF,
    STATIC_URL,
    STORAGES,
    TEMPLATES,
    TIME_ZONE,
    USE_TZ,
    WHITENOISE_USE_FINDERS,
    WSGI_APPLICATION,
)
from ingestor_project.durations import env_duration
from ingestor_project.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_json,
    env_list,
    env_mapping,
    env_secret,
    env_str,
)
from ingestor_project.files import private_directory
from ingestor_project.ha_url import websocket_url
from ingestor_project.logging import file_handler, logging_config, register_secrets
from ingestor_project.tls import TlsFiles, env_pem

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / ".data")))
# What our processes create is theirs alone (0600, 0700): database, queued events, secrets.
os.umask(0o077)
private_directory(DATA_DIR)

# --- Django -----------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY", None)
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off: set SECRET_KEY or SECRET_KEY_FILE"
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-true"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes write (workers, listeners, web): WAL lets readers and one writer work
    # side by side, immediate transactions take the write lock up front, so a busy database
    # makes a writer wait up to the timeout instead of failing within milliseconds.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": env_float("SQLITE_BUSY_TIMEOUT", 20.0, minimum=0.1),
    }
# collectstatic's target (`make run`, the image's build); whitenoise serves it compressed.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
if STATIC_ROOT.is_relative_to(DATA_DIR):  # whitenoise warns at every start when it is missing
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# The first-run admin (`manage.py ensure_admin`); unset: "admin" with a generated password.
ADMIN_USERNAME = env_str("DJANGO_SUPERUSER_USERNAME", "admin")
ADMIN_PASSWORD = env_secret("DJANGO_SUPERUSER_PASSWORD", None)

# `check --deploy`'s hardening. Plain HTTP (a LAN) by default, where Secure cookies would fail
# CSRF at login. Behind a TLS proxy sending X-Forwarded-Proto: trust it, redirect, Secure cookies.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", BEHIND_TLS_PROXY)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", BEHIND_TLS_PROXY)
# Error pages (DEBUG) mask passwords inside URLs too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "ingestor_project.security.UrlPasswordFilter"
# HSTS includeSubDomains and preload commit a whole domain: the operator opts in (see below).
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# Admin login throttling (django-axes): failures per username and address, kept in the database.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_float("LOGIN_LOCKOUT_MINUTES", 15.0, minimum=0.1) / 60  # hours
AXES_LOCKOUT_PARAMETERS, AXES_RESET_ON_SUCCESS = [["username", "ip_address"]], True
_AXES_BACKEND = "axes.backends.AxesStandaloneBackend"
AUTHENTICATION_BACKENDS = [_AXES_BACKEND, *global_settings.AUTHENTICATION_BACKENDS]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
# Prometheus and orchestrators probe these over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Metrics ----------------------------------------------------------------------------------
# false swaps every metric for a no-op: the benchmark measures what metrics cost this way.
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)
# Every process of a host writes its samples here and /metrics aggregates them (prometheus_client
# multiprocess mode). It must be set before prometheus_client is imported, which is why the
# settings (loaded first by every process) set it; `make run` wipes it before starting.
METRICS_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "metrics")))
private_directory(METRICS_DIR)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Optional bearer token for /metrics.
METRICS_TOKEN = env_secret("METRICS_TOKEN", None)
# A port of its own for each long-lived process (multi-container deployments); 0: none.
METRICS_PORT = env_int("METRICS_PORT", 0, minimum=0, maximum=65535)

# --- Health -----------------------------------------------------------------------------------
# Listeners whose heartbeat readiness requires (homeassistant, mqtt); "none": none.
READY_LISTENERS = env_list("READY_LISTENERS", ["homeassistant"])
if READY_LISTENERS == ["none"]:
    READY_LISTENERS = []
# A listener heartbeat older than this many seconds is stale (listeners beat every 5 s).
HEARTBEAT_STALE_SECONDS = env_float("HEARTBEAT_STALE_SECONDS", 30.0, minimum=1)
# Readiness asks the workers for a ping (not possible with the filesystem broker).
READY_CHECK_WORKERS = env_bool("READY_CHECK_WORKERS", True)
# Budget of each readiness check, seconds.
READY_CHECK_TIMEOUT = env_float("READY_CHECK_TIMEOUT", 3.0, minimum=0.1)
# Each web process serves its last readiness result while it is younger than this many seconds
# and refreshes it in the background once past half of it (0: run every check on every request).
# A few seconds keeps a probe under load answering from memory (a refresh asks the workers and
# waits half a second for their replies) while staying below an orchestrator's probe period.
READY_CACHE_SECONDS = env_float("READY_CACHE_SECONDS", 5.0, minimum=0, maximum=60)

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], "INFO")
LOG_FORMAT = env_choice("LOG_FORMAT", ["json", "console"], "console" if DEBUG else "json")
# Optional file output besides stderr, rotated by size or by time; "{pid}" in the path keeps
# each process on a file of its own.
LOG_FILE = env_str("LOG_FILE", None)
LOG_FILE_MAX_BYTES = env_int("LOG_FILE_MAX_BYTES", 50 * 1024 * 1024, minimum=1024)
LOG_FILE_WHEN = env_choice(
    "LOG_FILE_WHEN",
    ["S", "M", "H", "D", "midnight", "W0", "W1", "W2", "W3", "W4", "W5", "W6"],
    None,
)
LOG_FILE_BACKUPS = env_int("LOG_FILE_BACKUPS", 7, minimum=0)
LOG_HANDLER = file_handler(LOG_FILE, LOG_FILE_MAX_BYTES, LOG_FILE_WHEN, LOG_FILE_BACKUPS)
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT, LOG_HANDLER)

# --- Celery -----------------------------------------------------------------------------------
# The try-it-out default needs no server: messages are files under DATA_DIR/broker
# (ingestor_project/embedded_broker.py). Production sets amqp://... (RabbitMQ) or redis://...
# Platform add-ons hand over their broker as one of the later names: the first set wins.
_BROKER_URLS = [env_secret("CELERY_BROKER_URL", None), env_secret("CLOUDAMQP_URL", None)]
_BROKER_URLS += [env_secret("RABBITMQ_URL", None), env_secret("REDIS_URL", None)]
CELERY_BROKER_URL = next((url for url in _BROKER_URLS if url), "embedded://")
CELERY_INGEST_QUEUE = env_str("CELERY_INGEST_QUEUE", "ingest")
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=10)
CELERY_MAINTENANCE_QUEUE = env_str("CELERY_MAINTENANCE_QUEUE", "maintenance")
# Retries of a transient write failure: exponential backoff (factor seconds, doubled each time,
# full jitter) capped at the maximum. 100 retries at the 5-minute cap is about 8 hours of
# outage before a batch becomes a dead letter, and the periodic replay picks it up from there.
WRITE_RETRY_BACKOFF = env_int("WRITE_RETRY_BACKOFF", 2, minimum=1)
WRITE_RETRY_BACKOFF_MAX = env_int("WRITE_RETRY_BACKOFF_MAX", 300, minimum=1)
WRITE_MAX_RETRIES = env_int("WRITE_MAX_RETRIES", 100, minimum=0)
# 401/403/404 need an operator: retry no faster than this many seconds.
WRITE_AUTH_RETRY_MIN = env_int("WRITE_AUTH_RETRY_MIN", 60, minimum=1)
# InfluxDB circuit breaker, shared through the database: opens after this many consecutive
# transient failures (a restart of InfluxDB costs one or two), probes again after the cooldown.
BREAKER_THRESHOLD = env_int("BREAKER_THRESHOLD", 5, minimum=1)
BREAKER_COOLDOWN = env_float("BREAKER_COOLDOWN", 15.0, minimum=0.1)
# How long a task waits for an open breaker before handing its batch back to the broker.
BREAKER_PARK_SECONDS = env_float("BREAKER_PARK_SECONDS", 10.0, minimum=0)
# Periodic replay of retryable dead letters (Celery beat).
REPLAY_INTERVAL = env_float("REPLAY_INTERVAL", 60.0, minimum=1)
REPLAY_BATCH_SIZE = env_int("REPLAY_BATCH_SIZE", 100, minimum=1)

# user:password[,...]: Flower reads it itself; flower_guard needs it off loopback.
FLOWER_BASIC_AUTH = env_secret("FLOWER_BASIC_AUTH", None)
# --- Home Assistant source --------------------------------------------------------------------
_ha_url = env_str("HA_URL", None)
try:
    HA_WEBSOCKET_URL = websocket_url(_ha_url) if _ha_url else None
except ValueError as exc:
    raise ImproperlyConfigured(f"HA_URL={_ha_url!r} is not usable: {exc}") from None
HA_TOKEN = env_secret("HA_TOKEN", None)
if HA_WEBSOCKET_URL and not HA_TOKEN:
    raise ImproperlyConfigured("HA_TOKEN is required when HA_URL is set: a long-lived access token")
# "*" subscribes to every event type (one subscription without event_type).
HA_EVENT_TYPES = env_list("HA_EVENT_TYPES", ["state_changed"])
if "*" in HA_EVENT_TYPES:
    HA_EVENT_TYPES = []
HA_VERIFY_SSL = env_bool("HA_VERIFY_SSL", True)
HA_TLS = TlsFiles(env_pem("HA_CA_FILE"), env_pem("HA_CERT_FILE"), env_pem("HA_KEY_FILE"))
# Application-level ping: every N seconds; no pong within the timeout means a dead connection.
HA_PING_INTERVAL = env_float("HA_PING_INTERVAL", 30.0, minimum=1)
HA_PING_TIMEOUT = env_float("HA_PING_TIMEOUT", 10.0, minimum=0.5)
# Name of this Home Assistant for its high-water mark (default: derived from HA_URL).
HA_INSTANCE = env_str("HA_INSTANCE", None)
# Gap backfill from HA's history after any restart or reconnect.
BACKFILL_ENABLED = env_bool("BACKFILL_ENABLED", True)
BACKFILL_MAX_LOOKBACK = env_float("BACKFILL_MAX_LOOKBACK", 86400.0, minimum=1)
BACKFILL_OVERLAP = env_float("BACKFILL_OVERLAP", 1.0, minimum=0)
BACKFILL_CHUNK_ENTITIES = env_int("BACKFILL_CHUNK_ENTITIES", 100, minimum=1)
BACKFILL_WINDOW = env_float("BACKFILL_WINDOW", 3600.0, minimum=1)
BACKFILL_TIMEOUT = env_float("BACKFILL_TIMEOUT", 60.0, minimum=1)
HA_IMPORT_HISTORY_ON_FIRST_START = env_duration("HA_IMPORT_HISTORY_ON_FIRST_START")  # e.g. 30d
SIMULATOR_ENTITIES = env_int("SIMULATOR_ENTITIES", 50, minimum=1)
SIMULATOR_RATE = env_float("SIMULATOR_RATE", 5.0, minimum=0.01)
# Token of `manage.py simulate_homeassistant` when --token is not given (default: the simulator's).
SIMULATOR_TOKEN = env_str("SIMULATOR_TOKEN", None)

# --- MQTT listener (python manage.py listen_mqtt; docs/mqtt-settings.md) --------------------
MQTT_URL = env_secret("MQTT_URL", "mqtt://localhost:1883")
MQTT_USERNAME = env_str("MQTT_USERNAME", None)
MQTT_PASSWORD = env_secret("MQTT_PASSWORD", None)
# Parsed here, not connected to: every process loads settings, and none needs the broker up.
from ingestor_project.mqtt_broker import mqtt_broker  # noqa: E402 - kept inside this block

try:
    MQTT_BROKER = mqtt_broker(MQTT_URL, MQTT_USERNAME, MQTT_PASSWORD)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# The URL's password unquoted: what the client sends, and what a log line could show.
register_secrets([MQTT_BROKER.password])
MQTT_CLIENT_ID = env_str("MQTT_CLIENT_ID", "ha-ingestor")
MQTT_PROTOCOL = env_choice("MQTT_PROTOCOL", ["5", "3.1.1"], "5")
MQTT_KEEPALIVE = env_int("MQTT_KEEPALIVE", 60, minimum=5, maximum=65535)
MQTT_SESSION_EXPIRY = env_int("MQTT_SESSION_EXPIRY", 604800, minimum=60, maximum=4294967295)
MQTT_TLS = TlsFiles(env_pem("MQTT_CA_FILE"), env_pem("MQTT_CERT_FILE"), env_pem("MQTT_KEY_FILE"))
MQTT_SUBSCRIPTIONS = env_list(
    "MQTT_SUBSCRIPTIONS",
    [
        "homeassistant/statestream/#=statestream",
        "homeassistant/eventstream=eventstream",
        "zigbee2mqtt/+=json",
    ],
)
# Sent as MQTT 5 Receive Maximum, a two-byte integer.
MQTT_MAX_UNACKED = env_int("MQTT_MAX_UNACKED", 5000, minimum=1, maximum=65535)
MQTT_MAX_PAYLOAD_BYTES = env_int("MQTT_MAX_PAYLOAD_BYTES", 262144, minimum=64, maximum=268435456)
MQTT_RETAINED = env_choice("MQTT_RETAINED", ["ingest_once", "ignore", "always"], "ingest_once")
# HA publishes a change's state, timestamps and attributes back to back; a quiet gap this long
# ends the change. Under load a listener stall of 0.5 s split changes in CI, so 2 s.
MQTT_STATESTREAM_SETTLE = env_float("MQTT_STATESTREAM_SETTLE", 2.0, minimum=0.01, maximum=60)
MQTT_JSON_SEPARATOR = env_str("MQTT_JSON_SEPARATOR", "_")
MQTT_JSON_STATE_KEY = env_str("MQTT_JSON_STATE_KEY", "state")
MQTT_JSON_TIME_KEYS = env_list("MQTT_JSON_TIME_KEYS", ["last_seen", "time", "timestamp"])

# --- Batching ---------------------------------------------------------------------------------
# One Celery task per batch: Celery publishes a few thousand tasks/s per process, so per-event
# tasks could not keep up with a busy home. 2000 events (a ~600 KB message) is where larger
# batches stopped paying off (docs/benchmarks.md).
INGEST_BATCH_SIZE = env_int("INGEST_BATCH_SIZE", 2000, minimum=1, maximum=100_000)
INGEST_FLUSH_INTERVAL = env_float("INGEST_FLUSH_INTERVAL", 1.0, minimum=0.01, maximum=300)
# Batches held in memory while the broker is slow or away, before the reader pauses: with the
# default batch size up to a million events (a few GB); a pause costs no data (HA's history
# fills the gap on reconnect, MQTT's broker keeps what was not acknowledged).
INGEST_MAX_PENDING_BATCHES = env_int("INGEST_MAX_PENDING_BATCHES", 500, minimum=1)
INGEST_SHUTDOWN_TIMEOUT = env_float("INGEST_SHUTDOWN_TIMEOUT", 20.0, minimum=1)
# Largest task body: a bigger batch is split, a bigger single event becomes a dead letter.
# RabbitMQ 4 refuses messages over 16 MiB; half of that leaves room for headers and encodings.
INGEST_MAX_BATCH_BYTES = env_int(
    "INGEST_MAX_BATCH_BYTES", 8 * 1024 * 1024, minimum=64 * 1024, maximum=512 * 1024 * 1024
)
# Young-generation GC threshold of listeners and workers (ingestor_project/gc_tuning.py);
# 0 keeps Python's default of 700.
GC_THRESHOLD = env_int("GC_THRESHOLD", 50_000, minimum=0, maximum=10_000_000)

# --- InfluxDB ---------------------------------------------------------------------------------
INFLUX_URL = env_str("INFLUX_URL", "http://localhost:8086").rstrip("/")
INFLUX_API_VERSION = env_choice("INFLUX_API_VERSION", ["1", "2"], "1")
INFLUX_DATABASE = env_str("INFLUX_DATABASE", "home_assistant")
INFLUX_USERNAME = env_str("INFLUX_USERNAME", None)
INFLUX_PASSWORD = env_secret("INFLUX_PASSWORD", None)
INFLUX_TOKEN = env_secret("INFLUX_TOKEN", None)
INFLUX_ORG = env_str("INFLUX_ORG", None)
INFLUX_BUCKET = env_str("INFLUX_BUCKET", None)
INFLUX_TIMEOUT = env_float("INFLUX_TIMEOUT", 10.0, minimum=0.1)
INFLUX_GZIP = env_bool("INFLUX_GZIP", True)
INFLUX_VERIFY_SSL = env_bool("INFLUX_VERIFY_SSL", True)
INFLUX_TLS = TlsFiles(
    env_pem("INFLUX_CA_FILE"), env_pem("INFLUX_CERT_FILE"), env_pem("INFLUX_KEY_FILE")
)
INFLUX_PRECISION = env_choice("INFLUX_PRECISION", ["ns", "us", "ms", "s"], "ns")
# Distinct values admitted per tag key (tags_attributes, event tags) per worker process; 0: no cap.
INFLUX_MAX_TAG_VALUES = env_int("INFLUX_MAX_TAG_VALUES", 1000, minimum=0)

# --- Point schema (HA's influxdb integration options and our improvements) ---------------------
# Plain values: the tasks app builds its SchemaOptions from them at start-up (INGEST_SCHEMA).
INFLUX_MEASUREMENT_ATTR = env_choice(
    "INFLUX_MEASUREMENT_ATTR",
    ["unit_of_measurement", "domain__device_class", "entity_id"],
    "unit_of_measurement",
)
INFLUX_DEFAULT_MEASUREMENT = env_str("INFLUX_DEFAULT_MEASUREMENT", None)
INFLUX_OVERRIDE_MEASUREMENT = env_str("INFLUX_OVERRIDE_MEASUREMENT", None)
INFLUX_TAGS = env_mapping("INFLUX_TAGS")
INFLUX_TAGS_ATTRIBUTES = env_list("INFLUX_TAGS_ATTRIBUTES")
INFLUX_IGNORE_ATTRIBUTES = env_list("INFLUX_IGNORE_ATTRIBUTES")
INFLUX_COMPONENT_CONFIG = component_config(
    "INFLUX_COMPONENT_CONFIG", env_json("INFLUX_COMPONENT_CONFIG", {})
)
INFLUX_COMPONENT_CONFIG_DOMAIN = component_config(
    "INFLUX_COMPONENT_CONFIG_DOMAIN", env_json("INFLUX_COMPONENT_CONFIG_DOMAIN", {})
)
INFLUX_COMPONENT_CONFIG_GLOB = component_config(
    "INFLUX_COMPONENT_CONFIG_GLOB", env_json("INFLUX_COMPONENT_CONFIG_GLOB", {})
)
INFLUX_JSON_ATTRIBUTES = env_bool("INFLUX_JSON_ATTRIBUTES", True)
INFLUX_WRITE_UNAVAILABLE = env_bool("INFLUX_WRITE_UNAVAILABLE", False)
INFLUX_EVENTS_MEASUREMENT = env_str("INFLUX_EVENTS_MEASUREMENT", "ha_events")
# Keys of event data that become tags of other events: bounded vocabularies only.
INFLUX_EVENT_TAG_KEYS = env_list("INFLUX_EVENT_TAG_KEYS", ["domain", "service"])

# --- Entity filter (HA's include/exclude: domains, entity globs, entity ids) -------------------
ENTITY_FILTER = {
    "include_domains": env_list("INCLUDE_DOMAINS"),
    "include_globs": env_list("INCLUDE_ENTITY_GLOBS"),
    "include_entities": env_list("INCLUDE_ENTITIES"),
    "exclude_domains": env_list("EXCLUDE_DOMAINS"),
    "exclude_globs": env_list("EXCLUDE_ENTITY_GLOBS"),
    "exclude_entities": env_list("EXCLUDE_ENTITIES"),
}

if INFLUX_API_VERSION == "2":
    for _name, _value in [
        ("INFLUX_TOKEN", INFLUX_TOKEN),
        ("INFLUX_ORG", INFLUX_ORG),
        ("INFLUX_BUCKET", INFLUX_BUCKET),
    ]:
        if not _value:
            raise ImproperlyConfigured(f"{_name} is required when INFLUX_API_VERSION=2")
if bool(INFLUX_USERNAME) != bool(INFLUX_PASSWORD):
    raise ImproperlyConfigured("INFLUX_USERNAME and INFLUX_PASSWORD must be set together")

register_secrets(
    [
        SECRET_KEY,
        ADMIN_PASSWORD,
        HA_TOKEN,
        INFLUX_PASSWORD,
        INFLUX_TOKEN,
        METRICS_TOKEN,
        MQTT_PASSWORD,
        *[urlsplit(url).password for url in _BROKER_URLS if url],
        urlsplit(MQTT_URL).password,
        *[entry.partition(":")[2] for entry in (FLOWER_BASIC_AUTH or "").split(",")],
    ]
)
