"""MQTT_SUBSCRIPTIONS parsing, routing a topic to its subscription, and retained copies."""

from __future__ import annotations

import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

from listeners.mqtt.subscriptions import (
    RetainedCopies,
    Router,
    Subscription,
    parse_subscriptions,
    subscribe_options,
)


def test_subscriptions_are_read_as_filter_equals_format_pairs():
    subscriptions = parse_subscriptions(["homeassistant/#=statestream", "hass/events=eventstream"])
    assert subscriptions == (
        Subscription("homeassistant/#", "statestream"),
        Subscription("hass/events", "eventstream"),
    )


@pytest.mark.parametrize(
    "text",
    ["sensors/#", "sensors/#=xml", "a/#/b=json", "a/b+=json", "=json", "a=json,a=value", ""],
)
def test_a_malformed_subscription_list_is_refused(text):
    with pytest.raises(ValueError):
        parse_subscriptions(text.split(",") if text else [])


def test_the_device_name_follows_the_filters_fixed_prefix():
    assert Subscription("zigbee2mqtt/+", "json").prefix_levels == 1
    assert Subscription("site/+/sensors/#", "value").prefix_levels == 1
    assert Subscription("hass/events", "eventstream").prefix_levels == 2


def test_a_topic_goes_to_the_first_subscription_that_matches_it():
    router = Router(parse_subscriptions(["a/b/#=json", "a/#=value"]))
    assert router.match("a/b/c") == Subscription("a/b/#", "json")
    assert router.match("a/x") == Subscription("a/#", "value")
    assert router.match("other") is None


def test_ingest_once_skips_a_retained_copy_only_when_its_payload_was_last_taken():
    copies = RetainedCopies("ingest_once")
    assert not copies.skip(False, "t", b"1")
    assert copies.skip(True, "t", b"1")
    assert not copies.skip(True, "t", b"2")
    assert not copies.skip(True, "other", b"2")


def test_retained_handling_is_a_subscribe_option_with_mqtt_5_only():
    assert subscribe_options(v5=False, retained="ignore") == 1
    options = subscribe_options(v5=True, retained="ignore")
    assert (options.QoS, options.retainHandling) == (1, SubscribeOptions.RETAIN_DO_NOT_SEND)
