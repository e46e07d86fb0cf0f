"""Every counter of the MQTT listener moves under real traffic (the machine's Mosquitto and
RabbitMQ), read from the aggregate /metrics serves; event-type labels are bounded."""

from __future__ import annotations

import json
import signal
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingestor_project.exposition import exposition
from listeners.instrumentation import ListenerMetrics
from tests.helpers import migrate, service_env, wait_until
from tests.test_observability import sample

pytestmark = pytest.mark.timeout(180)


def publish_all(messages: list[tuple[str, str]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.loop_stop()
        client.disconnect()


def event(event_type: str, data: dict) -> str:
    return json.dumps(
        {"event_type": event_type, "event_data": data, "time_fired": "2024-05-01T10:00:00+00:00"}
    )


def test_every_mqtt_listener_counter_moves_under_real_traffic(
    postgres_url, ingest_queue, processes, tmp_path
):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    metrics_dir = tmp_path / "metrics"
    env = service_env(
        DATABASE_URL=postgres_url,
        CELERY_INGEST_QUEUE=ingest_queue,
        CELERY_MAINTENANCE_QUEUE=ingest_queue + "-m",
        DATA_DIR=str(tmp_path),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        LOG_FORMAT="json",
        INGEST_BATCH_SIZE="500",
        INGEST_FLUSH_INTERVAL="0.2",
        MQTT_URL="mqtt://127.0.0.1:1883",
        MQTT_CLIENT_ID=f"{prefix}-listener",
        MQTT_SESSION_EXPIRY="60",
        MQTT_SUBSCRIPTIONS=f"{prefix}/ev=eventstream,{prefix}/z/+=json",
        EXCLUDE_DOMAINS="switch",
    )
    migrate(env)
    listener = processes.manage("listener", ["listen_mqtt"], env)
    wait_until(lambda: "mqtt_subscribed" in processes.log("listener"), 30, "the subscription")
    light = {"entity_id": "light.hall", "new_state": {"entity_id": "light.hall", "state": "on"}}
    switch = {"entity_id": "switch.pump", "new_state": {"entity_id": "switch.pump", "state": "on"}}
    messages = [(f"{prefix}/z/dev{n % 20}", json.dumps({"n": n})) for n in range(3000)]
    messages += [(f"{prefix}/ev", event("state_changed", light))] * 100
    messages += [(f"{prefix}/ev", event("state_changed", switch))] * 7  # filtered
    messages += [(f"{prefix}/ev", event("call_service", {"domain": "light"}))] * 5
    messages += [(f"{prefix}/ev", event("automation_triggered", {"name": "a"}))] * 3
    messages += [(f"{prefix}/ev", "{not json")] * 4  # unparseable
    publish_all(messages)

    def received() -> float:
        text = exposition(str(metrics_dir)).decode()
        return sample(text, "ha_ingestor_events_received_total", source="mqtt")

    # Read while the listener runs: the counters must move during traffic, not only at exit.
    wait_until(lambda: received() == 3108, 60, "the MQTT events counted")
    text = exposition(str(metrics_dir)).decode()
    assert sample(text, "ha_ingestor_events_filtered_total", source="mqtt") == 7
    assert sample(text, "ha_ingestor_events_unparseable_total", source="mqtt") == 4
    assert sample(text, "ha_ingestor_batches_published_total", source="mqtt") >= 1
    assert sample(text, "ha_ingestor_publish_duration_seconds_count", source="mqtt") >= 1
    assert sample(text, "ha_ingestor_state_changes_total", domain="light") == 100
    assert sample(text, "ha_ingestor_service_calls_total", domain="light") == 5
    assert sample(text, "ha_ingestor_automations_triggered_total") == 3
    assert sample(text, "ha_ingestor_entities_seen", source="mqtt") == 21
    assert sample(text, "ha_ingestor_listener_connected", source="mqtt") == 1
    assert "ha_ingestor_mqtt_unacked_messages" in text
    assert processes.stop(listener, signal.SIGTERM) == 0, processes.log("listener")


def test_event_types_past_the_cap_are_counted_as_other(settings):
    source = f"cap-test-{uuid.uuid4().hex[:8]}"
    counters = ListenerMetrics(source)
    for n in range(3000):
        counters.received({"event_type": f"custom_event_{n}"})
    counters.received({"event_type": "state_changed", "entity_id": "light.hall"})
    counters.flush()
    text = exposition(str(settings.METRICS_DIR)).decode()
    series = [
        line
        for line in text.splitlines()
        if line.startswith("ha_ingestor_events_received_total{") and f'"{source}"' in line
    ]
    # The admitted types (the business ones reserved among them) and "other".
    assert 50 < len(series) <= ListenerMetrics.MAX_EVENT_TYPES + 1
    assert sample(text, "ha_ingestor_events_received_total", source=source) == 3001
    assert sample(text, "ha_ingestor_events_received_total", source=source, event_type="other") > 0
    assert (
        sample(text, "ha_ingestor_events_received_total", source=source, event_type="state_changed")
        == 1
    )
