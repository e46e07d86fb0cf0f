"""The listener's configuration, built once from the MQTT_* settings."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from listeners.mqtt.settings import config_from_settings
from listeners.mqtt.subscriptions import Subscription


@override_settings(
    MQTT_SUBSCRIPTIONS=["ha/#=statestream", "z2m/+=json"],
    MQTT_JSON_TIME_KEYS=["last_seen"],
    MQTT_PROTOCOL="3.1.1",
)
def test_the_configuration_holds_the_settings_broker_and_parsed_subscriptions():
    config = config_from_settings(settings)
    assert config.subscriptions == (
        Subscription("ha/#", "statestream"),
        Subscription("z2m/+", "json"),
    )
    assert config.broker is settings.MQTT_BROKER
    assert (config.json.time_keys, config.v5) == (("last_seen",), False)


@override_settings(MQTT_SUBSCRIPTIONS=["a/#=xml"])
def test_a_bad_subscription_is_refused_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match="^MQTT_SUBSCRIPTIONS: 'a/#=xml'"):
        config_from_settings(settings)
