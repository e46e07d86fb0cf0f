"""When a received MQTT message may be acknowledged: once the Celery broker holds its events.

At-least-once from the MQTT broker to the queue rests on three things:

- a persistent session (clean start off, a stable client id, an MQTT 5 session expiry), so the
  broker keeps every unacknowledged QoS-1 message for us while we are away;
- manual acknowledgements: a message's PUBACK is sent only once every event it produced sits
  in a batch the Celery broker has confirmed (:class:`AckTracker`). A crash anywhere before that
  leaves the message unacknowledged, and the broker delivers it again;
- a bounded window: with MQTT 5 we announce ``Receive Maximum = MQTT_MAX_UNACKED``, and the
  broker never has more unacknowledged messages out to us than that. That *is* the
  backpressure: a slow Celery broker delays confirmations, hence acks, hence new deliveries,
  while the MQTT broker queues for us (its ``max_queued_messages`` must be sized for that).
  With MQTT 3.1.1 the broker's own inflight limit applies (Mosquitto: 20 by default) and
  ``MQTT_MAX_UNACKED`` should be set to it.
"""

from __future__ import annotations

import threading
from collections import deque


class PendingAck:
    """One received message. ``end`` is the number of events handed to the batcher once all of
    this message's events were (None while some may still come: an open statestream change)."""

    __slots__ = ("end", "generation", "mid", "qos")

    def __init__(self, mid: int, qos: int, generation: int) -> None:
        self.mid, self.qos, self.generation = mid, qos, generation
        self.end: int | None = None


class AckTracker:
    """Decides when a received message may be acknowledged.

    Events enter the batcher in one order and the batcher publishes its batches in that same
    order (one FIFO, one publisher thread), so "confirmed" is a single running count of events:
    a message whose last event is the n-th one handed over is safe once n events are confirmed.

    Acknowledgements go out strictly in receive order, because MQTT 3.1.1 §4.6 requires PUBACKs
    in the order the PUBLISHes arrived. A message yielding no event (filtered, a retained
    duplicate, an empty payload) therefore waits for every message before it, and a message held
    by an open statestream change holds back those after it for at most the settle window.
    """

    def __init__(self) -> None:
        self._pending: deque[PendingAck] = deque()
        self._lock = threading.Lock()
        self._confirmed = 0  # written by the publisher thread
        self.added = 0
        self.unacked = 0

    def received(self, mid: int, qos: int, generation: int) -> PendingAck:
        pending = PendingAck(mid, qos, generation)
        self._pending.append(pending)
        if qos:
            self.unacked += 1
        return pending

    def complete(self, pending: PendingAck) -> None:
        """Every event of this message has been handed to the batcher."""
        pending.end = self.added

    def confirmed(self, events: int) -> None:
        with self._lock:
            self._confirmed += events

    def all_confirmed(self) -> bool:
        """Every event handed to the batcher has been confirmed (on_published has run, which
        happens after the batch leaves the batcher's queue)."""
        with self._lock:
            return self._confirmed >= self.added

    def releasable(self) -> list[PendingAck]:
        """Pop, in receive order, the messages whose events are all confirmed."""
        with self._lock:
            confirmed = self._confirmed
        released = []
        while self._pending:
            head = self._pending[0]
            if head.end is None or head.end > confirmed:
                break
            released.append(self._pending.popleft())
            if head.qos:
                self.unacked -= 1
        return released
