"""MQTT_URL and the MQTT credentials, parsed once by the settings (no broker needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingestor_project.mqtt_broker import MqttBroker, broker_from_url, mqtt_broker
from tests.helpers import ROOT


def test_the_broker_url_gives_host_port_tls_and_credentials():
    broker = broker_from_url("mqtts://ingest:s%40cret@broker.lan")
    assert (broker.host, broker.port, broker.tls) == ("broker.lan", 8883, True)
    assert (broker.username, broker.password) == ("ingest", "s@cret")
    assert "s@cret" not in repr(broker)
    assert broker_from_url("mqtt://127.0.0.1:1884").port == 1884


@pytest.mark.parametrize(
    "url", ["http://u:topsecret@host", "mqtt://u:topsecret@host:99999", "mqtt://u:topsecret@/"]
)
def test_a_bad_broker_url_is_refused_without_repeating_its_password(url):
    with pytest.raises(ValueError) as refused:
        broker_from_url(url)
    assert "topsecret" not in str(refused.value)


def test_credentials_come_from_the_url_or_from_the_variables():
    expected = MqttBroker("h", 1883, False, "ingest", "pw12")
    assert mqtt_broker("mqtt://h", "ingest", "pw12") == expected
    assert mqtt_broker("mqtt://u:pw12@h", None, None).username == "u"


@pytest.mark.parametrize(
    ("url", "username", "password", "error"),
    [
        ("mqtt://u:pw12@h", "other", None, "either in MQTT_URL or in MQTT_USERNAME"),
        ("mqtt://h", None, "pw12", "MQTT_PASSWORD needs MQTT_USERNAME"),
        ("tcp://h", None, None, "MQTT_URL scheme 'tcp' is not mqtt:// or mqtts://"),
    ],
)
def test_a_bad_combination_names_the_variable(url, username, password, error):
    with pytest.raises(ValueError, match=error):
        mqtt_broker(url, username, password)


def start(**env: str) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.MQTT_BROKER)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "ingestor_project.settings",
            "SECRET_KEY": "x" * 50,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_process_refuses_a_bad_mqtt_url_at_start_up():
    result = start(MQTT_URL="http://u:topsecret@broker")
    assert result.returncode != 0
    assert "ImproperlyConfigured: MQTT_URL scheme 'http'" in result.stderr
    assert "topsecret" not in result.stderr


def test_the_default_broker_needs_no_broker_running():
    result = start(MQTT_URL="", MQTT_USERNAME="ingest", MQTT_PASSWORD="s3cret!")
    assert result.returncode == 0, result.stderr
    expected = "MqttBroker(host='localhost', port=1883, tls=False, username='ingest')"
    assert result.stdout.strip() == expected, "and the password never in its repr"
