"""Prometheus rules and the Grafana dashboard refer only to metrics the ingestor exports."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client import REGISTRY

import ingestor_project.metrics  # noqa: F401 - registers the catalogue
from tests.helpers import ROOT

SCRAPE_TIME = {
    "ha_ingestor_dead_letters_pending",
    "ha_ingestor_breaker_state",
    "ha_ingestor_listener_heartbeat_age_seconds",
    "ha_ingestor_queue_depth_messages",
}
NAME = re.compile(r"\b(ha_ingestor_[a-z_]+)")


def exported() -> set[str]:
    names = set(SCRAPE_TIME)
    for metric in REGISTRY.collect():
        if metric.name.startswith("ha_ingestor_"):
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
            names.update(metric.name + s for s in suffixes.get(metric.type, [""]))
    return names


def test_every_alert_has_an_expression_on_known_metrics_and_a_summary():
    rules = yaml.safe_load((ROOT / "docker/prometheus/alerts.yml").read_text())["groups"][0]
    assert len(rules["rules"]) >= 6
    for rule in rules["rules"]:
        assert rule["annotations"]["summary"]
        assert set(NAME.findall(rule["expr"])) <= exported(), rule["alert"]


def test_the_dashboard_queries_known_metrics():
    dashboard = json.loads((ROOT / "docker/grafana/dashboards/ingestor.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used and used <= exported(), used - exported()


def test_the_scrape_config_loads_the_rules():
    config = yaml.safe_load((ROOT / "docker/prometheus/prometheus.yml").read_text())
    # Relative to prometheus.yml: /etc/prometheus/ in compose, promtool's checks in place.
    assert config["rule_files"] == ["alerts.yml"]
