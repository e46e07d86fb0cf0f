"""Celery's configuration from the Django settings: RabbitMQ-grade delivery guarantees whatever
the broker."""

from __future__ import annotations

from django.conf import settings
from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES

from events.codec import ORJSON, register_orjson


def transport_options(broker_url: str) -> dict:
    scheme = broker_url.split("://", 1)[0].split("+", 1)[0]
    if scheme in ("amqp", "amqps", "pyamqp"):
        # Publisher confirms: apply_async returns only once RabbitMQ has the message.
        return {"confirm_publish": True}
    if scheme in ("redis", "rediss"):
        # A task not acked within this many seconds is redelivered: keep it well above the
        # task time limit (plus retry countdowns), or a slow task would run twice.
        return {"visibility_timeout": max(3600, settings.CELERY_TASK_TIME_LIMIT * 4)}
    if scheme in ("embedded", "filesystem"):
        folder = settings.DATA_DIR / "broker"
        (folder / "processed").mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    return {}


# embedded:// is the default, no-server broker (ingestor_project/embedded_broker.py). Every
# process that connects reads this configuration first, so the alias is known in time.
TRANSPORT_ALIASES.setdefault("embedded", "ingestor_project.embedded_broker:Transport")


def durable_queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name, durable=True)


settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
_queue, _maintenance = settings.CELERY_INGEST_QUEUE, settings.CELERY_MAINTENANCE_QUEUE

broker_url = settings.CELERY_BROKER_URL
broker_transport_options = transport_options(settings.CELERY_BROKER_URL)
broker_connection_retry_on_startup = True
task_serializer = "json"
result_serializer = "json"
# The HA listener publishes with orjson (events/codec.py); others with json.
register_orjson()
accept_content = ["json", ORJSON]
result_backend = None
task_ignore_result = True
# Ack after the write: a worker that dies mid-batch leaves the message to be redelivered, which
# is safe because points are deterministic (same batch -> same points).
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_cancel_long_running_tasks_on_connection_loss = True
task_time_limit = settings.CELERY_TASK_TIME_LIMIT
task_soft_time_limit = max(5, settings.CELERY_TASK_TIME_LIMIT - 10)
# Ingest and maintenance on separate queues: a replay never waits behind live data.
task_queues = [durable_queue(_queue), durable_queue(_maintenance)]
task_default_queue = _queue
task_default_exchange = _queue
task_default_routing_key = _queue
task_default_delivery_mode = "persistent"
task_routes = {
    "tasks.replay_failed_writes": {"queue": _maintenance, "routing_key": _maintenance},
}
beat_schedule = {
    "replay-failed-writes": {
        "task": "tasks.replay_failed_writes",
        "schedule": settings.REPLAY_INTERVAL,
        "kwargs": {"limit": settings.REPLAY_BATCH_SIZE},
        # A replay older than one interval is superseded by the next one.
        "options": {"expires": settings.REPLAY_INTERVAL},
    }
}
beat_schedule_filename = str(settings.DATA_DIR / "celerybeat-schedule")
worker_hijack_root_logger = False
# Off until someone watches: Flower turns them on when it starts (and every few seconds after,
# its enable_events), so its task list is as before; without it they cost a publish per task
# state and a heartbeat every 2 s for nobody (docs/benchmarks.md, footprint).
worker_send_task_events = False
task_send_sent_event = False
timezone = "UTC"
