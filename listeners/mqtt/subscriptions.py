"""What the MQTT listener subscribes to and how: topic filters with their payload format
(MQTT_SUBSCRIPTIONS), which subscription a topic belongs to, and retained copies (MQTT_RETAINED).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

log = structlog.get_logger(__name__)

# The payload formats of listeners/mqtt/formats.py (statestream: listeners/mqtt/statestream.py).
FORMATS = ("statestream", "eventstream", "json", "value")


@dataclass(frozen=True)
class Subscription:
    topic_filter: str
    format: str

    @property
    def prefix_levels(self) -> int:
        """Topic levels before the filter's first wildcard: what the device name follows."""
        levels = self.topic_filter.split("/")
        for index, level in enumerate(levels):
            if level in ("+", "#"):
                return index
        return len(levels)


def validate_filter(topic_filter: str) -> None:
    """MQTT 3.1.1 §4.7 topic filter rules; ValueError says what is wrong."""
    if not topic_filter or "\x00" in topic_filter:
        raise ValueError("a topic filter must be a non-empty string without NUL")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"{topic_filter!r}: '#' must be a whole, last level")
        if "+" in level and level != "+":
            raise ValueError(f"{topic_filter!r}: '+' must be a whole level")


def parse_subscriptions(items: Iterable[str]) -> tuple[Subscription, ...]:
    """``filter=format`` items to subscriptions; ValueError names the bad item."""
    subscriptions: list[Subscription] = []
    for item in items:
        topic_filter, sep, fmt = item.rpartition("=")
        topic_filter, fmt = topic_filter.strip(), fmt.strip()
        if not sep or fmt not in FORMATS:
            raise ValueError(f"{item!r} is not filter=format with format one of {FORMATS}")
        validate_filter(topic_filter)
        if any(s.topic_filter == topic_filter for s in subscriptions):
            raise ValueError(f"{topic_filter!r} is listed twice")
        subscriptions.append(Subscription(topic_filter, fmt))
    if not subscriptions:
        raise ValueError("at least one filter=format is needed")
    return tuple(subscriptions)


class Router:
    """The first subscription whose filter matches a topic (overlaps: first wins)."""

    # Distinct topics whose match is remembered.
    CACHE_SIZE = 100_000

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        self.subscriptions = tuple(subscriptions)
        self._routes: dict[str, Subscription | None] = {}

    def match(self, topic: str) -> Subscription | None:
        try:
            return self._routes[topic]
        except KeyError:
            pass
        found = next(
            (s for s in self.subscriptions if mqtt.topic_matches_sub(s.topic_filter, topic)),
            None,
        )
        if len(self._routes) >= self.CACHE_SIZE:
            self._routes.clear()
        self._routes[topic] = found
        return found


# MQTT 5 lets the broker skip retained copies we have already had: only on a new subscription
# (a new or lost session) for ingest_once, never for ignore.
_RETAIN_HANDLING = {
    "ingest_once": SubscribeOptions.RETAIN_SEND_IF_NEW_SUB,
    "ignore": SubscribeOptions.RETAIN_DO_NOT_SEND,
    "always": SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE,
}


def subscribe_options(v5: bool, retained: str) -> SubscribeOptions | int:
    """QoS 1, and with MQTT 5 the retain handling of the MQTT_RETAINED mode."""
    if not v5:
        return 1
    return SubscribeOptions(qos=1, retainHandling=_RETAIN_HANDLING[retained])


def report_subscribed(filters: list[str], reason_codes: Iterable[ReasonCode]) -> None:
    """Log the broker's answer to a SUBSCRIBE: refusals and downgrades loudly."""
    for topic_filter, reason in zip(filters, reason_codes, strict=False):
        if reason.is_failure:
            log.error(
                "mqtt_subscribe_refused",
                topic_filter=topic_filter,
                reason=str(reason),
                category="auth",
            )
        elif reason.value == 0:
            log.warning(
                "mqtt_subscribed_at_qos_0",
                topic_filter=topic_filter,
                hint="the broker downgraded the subscription: messages can be lost",
            )
    log.info("mqtt_subscribed", topic_filters=filters)


class RetainedCopies:
    """Which retained copies to skip. They come with every new subscription (every reconnect
    with MQTT 3.1.1, a lost session with MQTT 5): ``ingest_once`` skips a retained copy whose
    payload equals the last one this process took from that topic, live or retained (one small
    integer per topic); ``ignore`` skips every one; ``always`` none."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._last_payload: dict[str, int] = {}

    def skip(self, retained: bool, topic: str, payload: bytes) -> bool:
        if self.mode == "always":
            return False
        if self.mode == "ignore":
            return retained
        digest = hash(payload)
        previous = self._last_payload.get(topic)
        self._last_payload[topic] = digest
        return retained and previous == digest
