"""The benchmark keeps working: a few-second smoke run of the same script. Its timings are
reported, never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import ROOT, TEST_INFLUX_URL


def test_the_pipeline_benchmark_runs_and_reports_every_measure(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/pipeline.py", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "BENCH_INFLUX_URL": TEST_INFLUX_URL},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "pipeline.json").read_text())
    assert report["ceiling"]["points_per_s"] > 0
    for run in ("throughput_metrics_on", "throughput_metrics_off", "throughput_mqtt"):
        assert report[run]["events"] > 0
        assert {"listener", "worker"} <= set(report[run]["processes"])
    # The MQTT path's listener and worker were measured while running, and so was its source.
    mqtt = report["throughput_mqtt"]
    for name in ("listener", "worker", "publisher"):
        assert mqtt["processes"][name]["processes"] >= 1, name
        assert mqtt["processes"][name]["peak_rss_mib_max"] > 0, name
    assert "| End to end, MQTT path (eventstream)" in result.stdout
    assert set(report["metrics_overhead"]) == {"throughput_pct", "cpu_pct"}
    # The ceiling writes the points the pipeline writes, not a stand-in.
    assert report["ceiling"]["points"] == 20_000
    assert report["ceiling"]["fields_per_point"] > 2
    assert report["latency"]["samples"] > 0
    assert "| Direct-write ceiling" in result.stdout
