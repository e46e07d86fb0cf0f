"""Monitoring files: the alert rules pass their promtool unit tests (each alert firing and quiet),
Prometheus accepts its configuration, every metric of the catalogue is on a Grafana panel, and
every alert is explained for an operator in docs/alerts.md."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import ROOT

PROMETHEUS = ROOT / "docker/prometheus"
DASHBOARD = ROOT / "docker/grafana/dashboards/ingestor.json"
# Metrics deliberately on no panel, with the reason (none today).
NOT_ON_A_PANEL: dict[str, str] = {}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make services-test` installs Debian's prometheus")
    return subprocess.run(
        [binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def alert_names() -> set[str]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"]}


def test_the_alert_rules_pass_their_promtool_tests():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case():
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alert_names() - firing == set()
    assert alert_names() - quiet == set()


def test_prometheus_accepts_its_configuration_and_rules():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def catalogue() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.glob("ingestor_project/*.py"), *ROOT.glob("listeners/**/*.py")]:
        names.update(re.findall(r'"(ha_ingestor_[a-z_]+)"', path.read_text()))
    for path in ROOT.glob("tasks/**/*.py"):
        names.update(re.findall(r'"(ha_ingestor_[a-z_]+)"', path.read_text()))
    return names


def test_every_metric_of_the_catalogue_is_on_a_dashboard_panel():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = " ".join(t["expr"] for p in panels for t in p.get("targets", []))
    shown = set(re.findall(r"ha_ingestor_[a-z_]+", exprs))
    shown |= {re.sub(r"_(bucket|count|sum)$", "", name) for name in shown}
    names = catalogue()
    assert len(names) > 20, names
    assert names - shown - set(NOT_ON_A_PANEL) == set()


def test_every_alert_is_explained_for_an_operator():
    docs = (ROOT / "docs/alerts.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "docs/alerts.md" in readme
    assert [name for name in sorted(alert_names()) if f"### {name}" not in docs] == []
