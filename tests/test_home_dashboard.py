"""The Home dashboard and its InfluxDB datasource: every panel and variable query, substituted
the way Grafana substitutes them, runs on a real InfluxDB 1.x holding what the real pipeline
(simulator -> listener -> RabbitMQ -> worker) wrote, and returns data without an error."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kombu import Connection

from hasim.thread import SimulatorThread
from tests.helpers import (
    ROOT,
    TEST_BROKER_URL,
    TEST_INFLUX_URL,
    InfluxV1,
    Processes,
    influx_reachable,
    migrate,
    service_env,
    wait_until,
)

GRAFANA = ROOT / "docker/grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards/home.json").read_text())
TOKEN = "home-dashboard-token-0123456789"
# Every kind of simulated entity, in five rooms.
DOMAINS = {"sensor", "binary_sensor", "switch", "light", "climate"}
# Grafana's regex escaping of a multi-value variable's values (influxSpecialRegexEscape).
REGEX_SPECIAL = re.compile(r"([\\/^$*+?.()|\[\]{}])")


def targets() -> list[tuple[str, dict]]:
    return [(p["title"], t) for p in DASHBOARD["panels"] for t in p["targets"]]


def variables() -> dict[str, dict]:
    return {v["name"]: v for v in DASHBOARD["templating"]["list"]}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Iterator[dict]:
    """A database of the module's own, filled once by the pipeline from the simulator (with
    service calls and automation runs besides state changes). 30 s of events: panels that
    difference consecutive intervals need several 10 s intervals of data."""
    if not influx_reachable(TEST_INFLUX_URL):
        pytest.fail(
            f"InfluxDB is not answering at {TEST_INFLUX_URL}: run the tests with `make test`"
        )
    db = InfluxV1(TEST_INFLUX_URL, f"test_home_{uuid.uuid4().hex[:10]}")
    db.query(f'CREATE DATABASE "{db.database}"', database=False)
    queue, tmp = f"ingest-home-{uuid.uuid4().hex[:10]}", tmp_path_factory.mktemp("home")
    simulator = SimulatorThread(
        token=TOKEN, entities=50, rate=100, events=3000, seed=17, other_events_ratio=0.1
    ).start()
    processes = Processes(tmp)
    try:
        env = service_env(
            DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
            CELERY_INGEST_QUEUE=queue,
            CELERY_MAINTENANCE_QUEUE=f"{queue}-m",
            DATA_DIR=str(tmp),
            INFLUX_URL=TEST_INFLUX_URL,
            INFLUX_DATABASE=db.database,
            HA_URL=simulator.url,
            HA_TOKEN=TOKEN,
            HA_EVENT_TYPES="*",
            HA_INSTANCE="home-dashboard",
            BACKFILL_ENABLED="false",
            INGEST_BATCH_SIZE="500",
            INGEST_FLUSH_INTERVAL="0.2",
        )
        migrate(env)
        processes.worker("worker", env)
        processes.manage("listener", ["listen_homeassistant"], env)
        simulator.wait_until_done(timeout=60)
        states = len(simulator.delivered_state_changes())
        wait_until(
            lambda: sum(r["measurement"] != "ha_events" for r in db.points()) >= states,
            60,
            f"{states} state points in InfluxDB",
        )
        times = [r["time"] for r in db.points()]
        yield {"db": db, "from_ms": min(times) // 10**6 - 1000, "to_ms": max(times) // 10**6 + 1000}
    finally:
        processes.stop_all()
        simulator.stop()
        db.query(f'DROP DATABASE "{db.database}"', database=False)
        with Connection(TEST_BROKER_URL, connect_timeout=5) as conn:
            channel = conn.channel()
            for name in (queue, f"{queue}-m"):
                channel.queue_delete(name)
                channel.exchange_delete(name)


def run(db: InfluxV1, query: str) -> dict:
    result = db.query(query)["results"][0]
    assert "error" not in result, f"{query}\n{result['error']}"
    return result


def tag_values(db: InfluxV1, query: str) -> list[str]:
    """What Grafana lists for a SHOW TAG VALUES variable: the values of every series, once."""
    series = run(db, query).get("series", [])
    return sorted({row[1] for s in series for row in s["values"]})


def regex_value(values: list[str]) -> str:
    """A multi-value variable as Grafana's InfluxDB datasource writes it into /^...$/."""
    escaped = [REGEX_SPECIAL.sub(r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(query: str, *, time_filter: str, interval: str, domain: str, entity: str) -> str:
    assert set(re.findall(r"\$\w+", query)) <= {"$timeFilter", "$__interval", "$domain", "$entity"}
    query = query.replace("$timeFilter", time_filter).replace("$__interval", interval)
    return query.replace("$domain", domain).replace("$entity", entity)


def selections(home: dict) -> dict[str, dict[str, str]]:
    """Each way a user leaves the variables: All (the custom all value), and every value ticked
    one by one (Grafana then sends the list, regex-escaped)."""
    db = home["db"]
    domains = tag_values(db, variables()["domain"]["query"])
    entity_query = variables()["entity"]["query"].replace("$domain", regex_value(domains))
    return {
        "all": {"domain": variables()["domain"]["allValue"], "entity": ".*"},
        "each": {
            "domain": regex_value(domains),
            "entity": regex_value(tag_values(db, entity_query)),
        },
    }


def time_filters(home: dict) -> dict[str, tuple[str, str]]:
    """Grafana's $timeFilter for a relative range (now-15m to now) and for an absolute one, with
    the $__interval it would pick for each: range / max data points (about 1000), rounded, at
    least the datasource's timeInterval (10 s); the absolute one as a panel with its own 1s."""
    absolute = f"time >= {home['from_ms']}ms and time <= {home['to_ms']}ms"
    return {
        "relative": ("time >= now() - 15m and time <= now()", "10s"),
        "absolute": (absolute, "1s"),
    }


@pytest.mark.parametrize("times", ["relative", "absolute"])
@pytest.mark.parametrize("selection", ["all", "each"])
@pytest.mark.parametrize(
    ("title", "target"), targets(), ids=[f"{p}-{t['refId']}" for p, t in targets()]
)
def test_every_panel_query_returns_data(home, title, target, selection, times):
    time_filter, interval = time_filters(home)[times]
    chosen = selections(home)[selection]
    query = substitute(target["query"], time_filter=time_filter, interval=interval, **chosen)
    series = run(home["db"], query).get("series", [])
    assert series, f"{title}: no data for\n{query}"
    assert any(v is not None for s in series for row in s["values"] for v in row[1:]), title


def test_the_variables_list_the_home_and_narrow_entities_by_domain(home):
    db = home["db"]
    assert set(tag_values(db, variables()["domain"]["query"])) >= DOMAINS
    query = variables()["entity"]["query"].replace("$domain", regex_value(["binary_sensor"]))
    motion = tag_values(db, query)
    assert motion and all(name.endswith("_motion") for name in motion), motion
    everything = tag_values(db, variables()["entity"]["query"].replace("$domain", ".*"))
    assert set(motion) < set(everything)


def test_state_changes_by_domain_counts_every_state_point_once(home):
    """The bar chart merges its two tables and sums the rows per domain (its Merge and Group
    by transformations, done here): that is every state point of the domain, once."""
    panel = next(p for p in DASHBOARD["panels"] if p["title"] == "State changes by domain")
    assert [t["id"] for t in panel["transformations"]] == ["merge", "groupBy"]
    time_filter, interval = time_filters(home)["absolute"]
    totals: dict[str, int] = {}
    for target in panel["targets"]:
        query = substitute(
            target["query"], time_filter=time_filter, interval=interval, domain=".*", entity=".*"
        )
        for series in run(home["db"], query)["series"]:
            domain = series["tags"]["domain"]
            totals[domain] = totals.get(domain, 0) + sum(row[1] for row in series["values"])
    expected: dict[str, int] = {}
    for row in home["db"].points():
        if row["measurement"] != "ha_events":
            expected[row["domain"]] = expected.get(row["domain"], 0) + 1
    assert set(expected) >= DOMAINS
    assert totals == expected


def test_every_panel_uses_the_provisioned_influxdb_datasource():
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yml").read_text())
    (influx,) = datasource["datasources"]
    assert influx["type"] == "influxdb" and influx["jsonData"]["version"] == "InfluxQL"
    assert influx["jsonData"]["dbName"] == influx["database"] == "${INFLUX_DATABASE}"
    assert influx["jsonData"]["httpHeaderName1"] == "Authorization"
    assert influx["secureJsonData"]["httpHeaderValue1"].startswith("Token ${")
    used = [p["datasource"] for p in DASHBOARD["panels"]] + [t["datasource"] for _, t in targets()]
    used += [v["datasource"] for v in DASHBOARD["templating"]["list"]]
    assert all(d == {"type": "influxdb", "uid": influx["uid"]} for d in used)
    # Only one default datasource: the ingestor's dashboard relies on Prometheus being it.
    assert not influx.get("isDefault")


def test_the_dashboard_is_well_formed_and_provisioned():
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and DASHBOARD["uid"] == "ha-home"
    ingestor = json.loads((GRAFANA / "dashboards/ingestor.json").read_text())
    assert ingestor["uid"] != DASHBOARD["uid"]
    assert all(t["rawQuery"] and t["query"].startswith("SELECT ") for _, t in targets())
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/ingestor.yml").read_text())
    folder = Path(provider["providers"][0]["options"]["path"])
    compose = yaml.safe_load((ROOT / "docker/docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == str(folder)
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    # The datasource's ${...} come from Grafana's environment, and the mapping exists first.
    assert {"INFLUX_DATABASE", "GRAFANA_INFLUX_TOKEN"} <= set(grafana["environment"])
    assert grafana["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_hands_grafana_the_ingestor_token_unless_a_read_only_one_is_given(tmp_path):
    from tests.test_container import COMPOSE, compose_config, fill_secrets

    example = fill_secrets((COMPOSE.parent / "env.example").read_text())
    config = json.loads(compose_config(tmp_path / "a", example).stdout)
    environment = config["services"]["grafana"]["environment"]
    assert environment["GRAFANA_INFLUX_TOKEN"] == "set-by-test"
    assert environment["INFLUX_DATABASE"] == "home_assistant"
    assert config["services"]["migrate"]["environment"]["INFLUX_DATABASE"] == "home_assistant"
    result = compose_config(tmp_path / "b", example + "GRAFANA_INFLUX_TOKEN=read-only\n")
    environment = json.loads(result.stdout)["services"]["grafana"]["environment"]
    assert environment["GRAFANA_INFLUX_TOKEN"] == "read-only"
