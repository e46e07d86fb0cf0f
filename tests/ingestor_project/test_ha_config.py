"""convert_ha_config: HA's documented influxdb: examples become our environment lines, and the
settings those lines make decide and write exactly what HA's integration would for the same
events (the reference model in ha_reference.py, from docs/ha-influxdb-parity.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from ingestor_project.ha_config import convert_file
from tests.helpers import ROOT
from tests.ingestor_project import ha_reference

# The examples of HA's influxdb integration page (home-assistant.io,
# source/_integrations/influxdb.markdown), then two that use every schema option.
DOCUMENTED = {
    "bare": "influxdb:\n",
    "filter": """
influxdb:
  include:
    domains:
      - alarm_control_panel
      - light
    entity_globs:
      - binary_sensor.*_occupancy
  exclude:
    entities:
      - light.kitchen_light
""",
    "full 1.x": """
influxdb:
  host: 192.168.1.190
  port: 20000
  database: DB_TO_STORE_EVENTS
  username: MY_USERNAME
  password: MY_PASSWORD
  ssl: true
  verify_ssl: true
  max_retries: 3
  default_measurement: state
  exclude:
    entities:
       - entity.id1
       - entity.id2
    domains:
       - automation
  include:
    entities:
       - entity.id3
       - entity.id4
  tags:
    instance: prod
    source: hass
""",
    "full 2.x": """
influxdb:
  api_version: 2
  ssl: false
  host: localhost
  port: 9999
  token: GENERATED_AUTH_TOKEN
  organization: RANDOM_16_DIGIT_HEX_ID
  bucket: BUCKET_NAME
  tags:
    source: HA
  tags_attributes:
    - friendly_name
  default_measurement: units
  exclude:
    entities:
      - zone.home
    domains:
      - persistent_notification
      - person
  include:
    domains:
      - sensor
      - binary_sensor
      - sun
    entities:
      - weather.home
""",
    "exclude everything": 'influxdb:\n  exclude:\n    entity_globs: "*"\n',
    "by device class": """
influxdb:
  measurement_attr: domain__device_class
  precision: ms
  ignore_attributes: [icon]
  tags_attributes: friendly_name
  include:
    entity_globs: ["sensor.*", "light.*"]
    entities: "Climate.Hall, switch.kettle"
  exclude:
    entity_globs: sensor.*_power
    entities: [sensor.noisy]
  component_config:
    sensor.kitchen_power:
      override_measurement: kitchen_power
  component_config_domain:
    light:
      ignore_attributes: brightness
  component_config_glob:
    "sensor.*_temperature":
      override_measurement: temperatures
      ignore_attributes: [friendly_name]
    "sensor.bedroom_*":
      override_measurement: bedroom
""",
    "one measurement": """
influxdb:
  measurement_attr: entity_id
  override_measurement: ha
  exclude:
    domains: [automation, zone]
    entity_globs: ["*_battery"]
""",
}

EVENTS = [
    ("sensor.kitchen_temperature", "21.5", {"unit_of_measurement": "°C", "friendly_name": "K"}),
    ("sensor.bedroom_temperature", "19", {"unit_of_measurement": "°C", "device_class": "t"}),
    ("sensor.kitchen_power", "120.5", {"unit_of_measurement": "W", "device_class": "power"}),
    ("sensor.hall_power", "3", {"unit_of_measurement": "W", "icon": "mdi:flash"}),
    ("sensor.noisy", "7", {}),
    ("sensor.phone_battery", "88", {"unit_of_measurement": "%"}),
    ("sensor.washer", "Running", {"device_class": "enum", "state": "x", "remaining": "12 min"}),
    ("sensor.gone", "unavailable", {"unit_of_measurement": "W"}),
    ("binary_sensor.hall_occupancy", "on", {"device_class": "occupancy"}),
    ("binary_sensor.door", "off", {"device_class": "door", "friendly_name": "Door"}),
    ("light.kitchen_light", "on", {"brightness": 200, "friendly_name": "Kitchen light"}),
    ("light.desk", "off", {"friendly_name": "Desk", "icon": "mdi:lamp"}),
    ("alarm_control_panel.home", "armed_away", {"code_format": "number"}),
    ("climate.hall", "heat", {"current_temperature": 20.5, "temperature": "21.0 °C"}),
    ("switch.kettle", "off", {}),
    ("automation.morning", "on", {"last_triggered": "2026-01-02 07:00:00"}),
    ("person.me", "home", {"friendly_name": "Me"}),
    ("zone.home", "0", {"radius": 100}),
    ("sun.sun", "above_horizon", {"elevation": 12.3, "rising": True}),
    ("weather.home", "sunny", {"temperature": 4.0, "humidity": "nan"}),
    ("entity.id1", "1", {}),
    ("entity.id3", "on", {}),
]

OURS = """
import json, sys, django
django.setup()
from django.conf import settings
from events.contract import SOURCE_HOMEASSISTANT, state_event
from listeners.filters import EntityFilter
from tasks.schema import state_point
from tasks.schema_config import schema_options
options, keep = schema_options(settings), EntityFilter(**settings.ENTITY_FILTER).matches
out = []
for entity_id, state, attributes in json.load(sys.stdin):
    event = state_event(SOURCE_HOMEASSISTANT, entity_id, state, attributes, 10**18)
    out.append(state_point(event, options) if keep(entity_id) else None)
print(json.dumps(out))
"""


def write(tmp_path: Path, text: str, secrets: str = "") -> Path:
    path = tmp_path / "configuration.yaml"
    path.write_text(text)
    if secrets:
        (tmp_path / "secrets.yaml").write_text(secrets)
    return path


def active_lines(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def our_points(environment: dict[str, str]) -> list:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "ingestor_project.settings"}
    env |= {"SECRET_KEY": "x" * 50, "LOG_LEVEL": "WARNING", **environment}
    result = subprocess.run(
        [sys.executable, "-c", OURS],
        cwd=ROOT,
        env=env,
        input=json.dumps(EVENTS),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(DOCUMENTED))
def test_the_same_events_give_the_same_points_as_has_integration(name, tmp_path):
    import yaml

    conf = yaml.safe_load(DOCUMENTED[name])["influxdb"] or {}
    lines = active_lines(convert_file(write(tmp_path, DOCUMENTED[name]), resolve_secrets=True))
    expected = [ha_reference.point(conf, *event) for event in EVENTS]
    got = [None if p is None else (p[0], p[1], p[2]) for p in our_points(lines)]
    for event, want, have in zip(EVENTS, expected, got, strict=True):
        assert have == want, event[0]
    assert any(expected) or name == "exclude everything"


def test_the_documented_full_examples_become_these_lines(tmp_path):
    v1 = active_lines(convert_file(write(tmp_path, DOCUMENTED["full 1.x"]), True))
    assert v1["INFLUX_URL"] == "https://192.168.1.190:20000"
    assert v1["INFLUX_DATABASE"] == "DB_TO_STORE_EVENTS" and v1["INFLUX_PASSWORD"] == "MY_PASSWORD"
    assert v1["INFLUX_TAGS"] == "instance=prod,source=hass"
    v2 = active_lines(convert_file(write(tmp_path, DOCUMENTED["full 2.x"]), True))
    assert v2["INFLUX_URL"] == "http://localhost:9999" and v2["INFLUX_API_VERSION"] == "2"
    assert (v2["INFLUX_ORG"], v2["INFLUX_BUCKET"]) == ("RANDOM_16_DIGIT_HEX_ID", "BUCKET_NAME")
    assert v2["INCLUDE_DOMAINS"] == "sensor,binary_sensor,sun"
    bare = active_lines(convert_file(write(tmp_path, DOCUMENTED["bare"]), False))
    assert bare == {
        "INFLUX_API_VERSION": "1",
        "INFLUX_URL": "http://localhost:8086",
        "INFLUX_DATABASE": "home_assistant",
    }
    glob = active_lines(convert_file(write(tmp_path, DOCUMENTED["by device class"]), False))
    assert json.loads(glob["INFLUX_COMPONENT_CONFIG_GLOB"]) == {
        "sensor.*_temperature": {
            "override_measurement": "temperatures",
            "ignore_attributes": ["friendly_name"],
        },
        "sensor.bedroom_*": {"override_measurement": "bedroom"},
    }
    assert glob["INCLUDE_ENTITIES"] == "climate.hall,switch.kettle"


CONFIG_WITH_TAGS = """
homeassistant:
  customize: !include customize.yaml
automation: !include_dir_merge_list automations/
influxdb: !include influxdb.yaml
"""
INFLUX_YAML = """
api_version: 2
host: !secret influx_host
token: !secret influx_token
organization: !env_var INFLUX_ORG_FOR_TEST home
ssl_ca_cert: /ssl/ca.pem
verify_ssl: false
"""


def test_has_yaml_tags_load_and_secrets_are_printed_only_on_request(tmp_path):
    path = write(tmp_path, CONFIG_WITH_TAGS, "influx_host: db.lan\ninflux_token: t0ps3cret\n")
    (tmp_path / "influxdb.yaml").write_text(INFLUX_YAML)
    text = convert_file(path, resolve_secrets=False, environ={})
    assert "t0ps3cret" not in text and "db.lan" not in text
    lines = active_lines(text)
    assert lines["INFLUX_TOKEN_FILE"] == "/run/secrets/influx_token"
    assert "put the value of !secret influx_token into /run/secrets/influx_token" in text
    assert "# INFLUX_URL=https://!secret influx_host" in text, "unresolved: commented out"
    assert lines["INFLUX_ORG"] == "home"  # !env_var's default
    assert lines["INFLUX_CA_FILE"] == "/ssl/ca.pem" and lines["INFLUX_VERIFY_SSL"] == "false"
    resolved = active_lines(convert_file(path, True, environ={"INFLUX_ORG_FOR_TEST": "org1"}))
    assert resolved["INFLUX_TOKEN"] == "t0ps3cret" and "INFLUX_TOKEN_FILE" not in resolved
    assert resolved["INFLUX_URL"] == "https://db.lan" and resolved["INFLUX_ORG"] == "org1"


def test_the_command_prints_the_lines_and_refuses_a_file_without_the_block(tmp_path, capsys):
    path = write(tmp_path, DOCUMENTED["filter"])
    call_command("convert_ha_config", str(path))
    out = capsys.readouterr().out
    assert "INCLUDE_DOMAINS=alarm_control_panel,light\n" in out
    assert "EXCLUDE_ENTITIES=light.kitchen_light\n" in out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no influxdb: block"):
        call_command("convert_ha_config", str(write(tmp_path, "homeassistant:\n  name: x\n")))
    with pytest.raises(CommandError, match="No such file"):
        call_command("convert_ha_config", str(tmp_path / "missing.yaml"))
