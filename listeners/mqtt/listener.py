"""The MQTT listener: subscribe, parse, batch, and acknowledge only what the Celery broker holds
(how that makes delivery at-least-once: listeners/mqtt/acks.py).

Redelivery is harmless when a message carries its own timestamp (see listeners/mqtt/formats.py):
the same point is written again and overwrites itself.

The loop lives here in small steps (``step``, ``read``, ``handle_message``, ``housekeeping``,
``send_acks``, ``close``) that tests call directly; the management command only wires it up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import MQTTErrorCode

from events.contract import SOURCE_MQTT, unparseable_event
from ingestor_project import metrics as metric_catalogue
from ingestor_project.tls import connection_category
from listeners.backoff import Backoff
from listeners.batching import Batch, Batcher
from listeners.filters import EntityFilter
from listeners.instrumentation import ListenerMetrics
from listeners.mqtt.acks import AckTracker, PendingAck
from listeners.mqtt.formats import PayloadError, kept_payload, parse
from listeners.mqtt.settings import MqttConfig
from listeners.mqtt.statestream import Assembled, StatestreamAssembler, parse_statestream
from listeners.mqtt.subscriptions import (
    RetainedCopies,
    Router,
    report_subscribed,
    subscribe_options,
)

log = structlog.get_logger(__name__)


class MqttListener:
    # The network loop waits at most this long for data, so a stop request, the settle window
    # and batch flushing are all looked at several times a second.
    LOOP_TIMEOUT = 0.1
    # Housekeeping (settle window, batch interval, acks) runs at most this often while messages
    # stream in: every message would cost a scan of the open statestream changes.
    HOUSEKEEPING_EVERY = 0.02
    # Packets read in one turn at most, on top of the time bound (HOUSEKEEPING_EVERY).
    READ_BURST = 1000

    def __init__(
        self,
        client: mqtt.Client,
        batcher: Batcher,
        config: MqttConfig,
        *,
        entity_filter: EntityFilter | None = None,
        metrics: ListenerMetrics | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.batcher, self.config = client, batcher, config
        self.entity_filter = entity_filter if entity_filter and not entity_filter.empty else None
        self.metrics = metrics or ListenerMetrics(SOURCE_MQTT)
        # A broker restart takes a few seconds; 30 s caps the wait once it is really down.
        self.backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self.clock, self.wall_ns, self.sleep = clock, wall_ns, sleep
        self.tracker = AckTracker()
        self.assembler = StatestreamAssembler(config.statestream_settle)
        # The listener owns the acks, so it is the one told which batches the broker confirmed.
        batcher.on_published = self.batch_confirmed
        self._stopping = False
        self.link_up = False  # a socket exists (CONNACK may still be pending)
        self.connected = False  # the broker accepted us
        self.generation = 0  # one per accepted connection: packet ids are per connection
        self.received = 0  # messages paho handed to on_message
        self.next_attempt = 0.0
        self._last_housekeeping = 0.0
        self.router = Router(config.subscriptions)
        self.retained_copies = RetainedCopies(config.retained)
        self._subscribing: dict[int, list[str]] = {}
        counted = ("events", "unparseable", "filtered", "skipped", "unmatched", "redelivered")
        self.stats = dict.fromkeys((*counted, "acked", "reconnects"), 0)
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_subscribe = self.on_subscribe
        client.on_message = self.on_message

    # --- lifecycle -----------------------------------------------------------------------
    def request_stop(self) -> None:
        """Safe to call from a signal handler: it only sets a flag the loop checks."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def run(self) -> None:
        while not self.stopping:
            self.step()

    def step(self) -> None:
        """One turn of the loop: (re)connect when due, read what arrived, then housekeeping."""
        if not self.link_up:
            self._connect_when_due()
        elif self.batcher.has_room():
            self.read()
        else:
            # The Celery broker is far behind: stop reading, so TCP pushes back on the MQTT
            # broker, rather than hold unbounded memory. If this outlasts the keepalive the
            # broker drops us and redelivers later: at-least-once still holds.
            self.sleep(self.LOOP_TIMEOUT)
        if self.clock() - self._last_housekeeping >= self.HOUSEKEEPING_EVERY:
            self.housekeeping()

    def read(self) -> None:
        """Wait (bounded) for packets and handle them. paho's ``loop`` handles one packet per
        call, each behind a select(); while messages keep coming, ``loop_read`` takes the next
        ones without it, until housekeeping is due (or READ_BURST packets, or the batcher is
        full). Writes, keepalive pings and timeouts stay with ``loop``, once per turn."""
        received = self.received
        rc = self.client.loop(self.LOOP_TIMEOUT)
        for _ in range(self.READ_BURST):
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self.received == received:
                break  # no message in the last packet: nothing more waiting, or not a PUBLISH
            if self.stopping or not (self.link_up and self.batcher.has_room()):
                break
            if self.clock() - self._last_housekeeping >= self.HOUSEKEEPING_EVERY:
                break
            received = self.received
            rc = self.client.loop_read()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._link_down(mqtt.error_string(rc))

    def close(self, timeout: float) -> bool:
        """Hand over everything held, wait (bounded) for the broker to confirm it, acknowledge
        what it confirmed, disconnect. True when nothing was left unpublished. Messages read
        after the stop request were never taken: the broker delivers them again."""
        self._finish(self.assembler.flush())
        self.batcher.seal()
        deadline = self.clock() + timeout
        while not self.tracker.all_confirmed() and self.clock() < deadline:
            self.sleep(0.05)
            self.send_acks()
        self.send_acks()
        if self.link_up:
            self.client.disconnect()
        self.link_up = self.connected = False
        self.metrics.connected(False)
        self.metrics.flush()
        return self.tracker.all_confirmed()

    def _connect_when_due(self) -> None:
        wait = self.next_attempt - self.clock()
        if wait > 0:
            self.sleep(min(self.LOOP_TIMEOUT, wait))
            return
        try:
            self.client.reconnect()
        except OSError as exc:
            self._retry_later(f"{type(exc).__name__}: {exc}", connection_category(exc))
            return
        self.link_up = True

    def _link_down(self, reason: str) -> None:
        if not self.link_up:
            return
        self.link_up = False
        # TLS 1.3: a broker refusing our client certificate ends the link before any CONNACK.
        category = "tls" if self.config.broker.tls and not self.connected else "connection"
        if self.connected and not self.stopping:
            self.stats["reconnects"] += 1
            self.metrics.reconnected()
        self.connected = False
        self.metrics.connected(False)
        if not self.stopping:
            self._retry_later(reason, category)

    def _retry_later(self, reason: str, category: str = "connection") -> None:
        delay = self.backoff.next_delay()
        self.next_attempt = self.clock() + delay
        level = log.error if self.backoff.serious or category == "tls" else log.warning
        level(
            "mqtt_connection_lost",
            host=self.config.broker.host,
            port=self.config.broker.port,
            error=reason,
            category=category,
            attempt=self.backoff.failures,
            retry_in=round(delay, 2),
        )

    # --- paho callbacks (run inside client.loop, on this thread) -------------------------
    def on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error(
                "mqtt_connect_refused",
                host=self.config.broker.host,
                reason=str(reason_code),
                category="auth" if reason_code.value in (0x86, 0x87) else "connection",
            )
            return
        self.generation += 1
        self.connected = True
        self.backoff.reset()
        self.metrics.connected(True)
        log.info(
            "mqtt_connected",
            host=self.config.broker.host,
            port=self.config.broker.port,
            client_id=self.config.client_id,
            protocol=self.config.protocol,
            session_present=flags.session_present,
        )
        self.subscribe()

    def subscribe(self) -> None:
        """(Re)subscribe every filter at QoS 1, also on a resumed session: a broker that lost
        its state would otherwise send nothing."""
        options = subscribe_options(self.config.v5, self.config.retained)
        topics = [(s.topic_filter, options) for s in self.config.subscriptions]
        _, mid = self.client.subscribe(topics)
        self._subscribing[mid] = [s.topic_filter for s in self.config.subscriptions]

    def on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        report_subscribed(self._subscribing.pop(mid, []), reason_codes)

    def on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._link_down(f"disconnected: {reason_code}")

    def on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self.received += 1
        self.handle_message(message)

    # --- messages ------------------------------------------------------------------------
    def handle_message(self, message: mqtt.MQTTMessage) -> int:
        """Take one message; return the number of events it produced so far."""
        if self.stopping:
            return 0  # never acknowledged: the broker gives it to the next process
        record = self.tracker.received(message.mid, message.qos, self.generation)
        if message.dup:
            self.stats["redelivered"] += 1
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", errors="backslashreplace")
            return self._unparseable(record, topic, message, "topic is not UTF-8")
        try:
            return self._take(record, message, topic)
        except PayloadError as exc:
            return self._unparseable(record, topic, message, str(exc))
        except Exception as exc:  # a bug on one message must not stop the loop
            # Kept as a dead letter, and the record completed: an open record would hold
            # back every later acknowledgement.
            log.exception("mqtt_message_failed", topic=topic)
            return self._unparseable(record, topic, message, f"internal error: {exc!r}")

    def _take(self, record: PendingAck, message: mqtt.MQTTMessage, topic: str) -> int:
        subscription = self.router.match(topic)
        payload = message.payload
        if subscription is None:
            return self._unmatched(record, topic)
        if len(payload) > self.config.max_payload_bytes:
            raise PayloadError(
                f"payload of {len(payload)} bytes is over MQTT_MAX_PAYLOAD_BYTES "
                f"({self.config.max_payload_bytes})"
            )
        if self.retained_copies.skip(message.retain, topic, payload):
            self.stats["skipped"] += 1
            return self._emit_for(record, [])
        if subscription.format == "statestream":
            return self._statestream(record, topic, payload, live=not message.retain)
        event = parse(subscription, topic, payload, self.wall_ns(), self.config.json)
        if event is not None and message.dup:
            event["redelivered"] = True  # should it be set aside later, its dead letter is found
        return self._emit_for(record, [event])

    def _statestream(self, record: PendingAck, topic: str, payload: bytes, live: bool) -> int:
        part = parse_statestream(topic, payload)
        if not self._wanted(part.entity_id):
            return self._emit_for(record, [])
        finished = self.assembler.add(part, record, self.clock(), self.wall_ns(), live=live)
        return self._finish(finished)

    def _wanted(self, entity_id: str) -> bool:
        if self.entity_filter is None or self.entity_filter.matches(entity_id):
            return True
        self.stats["filtered"] += 1
        self.metrics.filtered()
        return False

    def _emit_for(self, record: PendingAck, events: Iterable[dict[str, Any] | None]) -> int:
        taken = 0
        for event in events:
            if event is None:
                self.stats["skipped"] += 1
            elif event.get("entity_id") and not self._wanted(event["entity_id"]):
                continue
            else:
                self._emit(event)
                taken += 1
        self.tracker.complete(record)
        return taken

    def _finish(self, finished: list[Assembled]) -> int:
        taken = 0
        for change in finished:
            if change.event is not None:
                self._emit(change.event)
                taken += 1
            for record in change.tokens:
                self.tracker.complete(record)
        return taken

    def _emit(self, event: dict[str, Any]) -> None:
        self.metrics.received(event)
        self.stats["events"] += 1
        self.batcher.add(event)
        self.tracker.added += 1

    def _unparseable(
        self, record: PendingAck, topic: str, message: mqtt.MQTTMessage, error: str
    ) -> int:
        payload = message.payload
        self.stats["unparseable"] += 1
        self.metrics.unparseable()
        log.warning(
            "mqtt_payload_unparseable",
            topic=topic,
            error=error,
            bytes=len(payload),
            category="unparseable",
        )
        # The marker travels in the batch like an event: the worker keeps it as a dead letter,
        # and the message is acknowledged only once that batch is safe.
        marker = unparseable_event(SOURCE_MQTT, kept_payload(payload), error, topic)
        if message.dup:  # the broker's second delivery: it finds the dead letter it has
            marker["redelivered"] = True
        self.batcher.add(marker)
        self.tracker.added += 1
        self.tracker.complete(record)
        return 0

    def _unmatched(self, record: PendingAck, topic: str) -> int:
        # A subscription from an earlier configuration that the persistent session kept.
        if not self.stats["unmatched"]:
            log.warning(
                "mqtt_topic_unmatched",
                topic=topic,
                hint="the session holds a subscription no longer configured; such messages "
                "are acknowledged and dropped (use a new MQTT_CLIENT_ID to start afresh)",
            )
        self.stats["unmatched"] += 1
        return self._emit_for(record, [])

    # --- housekeeping and acknowledgements -----------------------------------------------
    def housekeeping(self) -> None:
        self._last_housekeeping = self.clock()
        self._finish(self.assembler.due(self._last_housekeeping))
        self.batcher.tick()
        self.send_acks()
        self._seal_for_window()
        # Counted per event in memory; the shared metrics are written here, a few times a second.
        self.metrics.flush()

    def _seal_for_window(self) -> None:
        # The broker sends nothing more once max_unacked messages await our ack. When half
        # the window waits on events still in the buffer, sealing now (rather than at the
        # flush interval) keeps messages flowing; only while no batch is in flight, so a slow
        # broker does not get a flood of tiny batches.
        if (
            self.batcher.buffer
            and not self.batcher.pending
            and self.tracker.unacked >= max(1, self.config.max_unacked // 2)
        ):
            self.batcher.seal()

    def batch_confirmed(self, batch: Batch) -> None:
        """Called by the publisher thread once the broker has confirmed a batch."""
        self.tracker.confirmed(len(batch.events))

    def send_acks(self) -> int:
        """PUBACK, in receive order, every message whose events the broker confirmed. A message
        received on an earlier connection is not acked: packet ids belong to one connection
        (the broker redelivers it, and it overwrites its own point)."""
        sent = 0
        for record in self.tracker.releasable():
            if record.qos and self.connected and record.generation == self.generation:
                self.client.ack(record.mid, record.qos)
                sent += 1
        self.stats["acked"] += sent
        metric_catalogue.MQTT_UNACKED.set(self.tracker.unacked)
        return sent

    def status(self) -> tuple[bool, dict[str, Any]]:
        return self.connected, {**self.stats, "unacked": self.tracker.unacked}
