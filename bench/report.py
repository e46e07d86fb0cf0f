"""The benchmark's report: the markdown table, the targets met or not, and docs/benchmarks.md."""

from __future__ import annotations

from bench.stack import ROOT, SERVICES

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def markdown(result: dict) -> str:
    """One run's measures as a markdown table."""
    on, off, lat, ceil, mqtt = (
        result["throughput_metrics_on"],
        result["throughput_metrics_off"],
        result["latency"],
        result["ceiling"],
        result["throughput_mqtt"],
    )
    overhead = result["metrics_overhead"]

    def rates(run: dict) -> str:
        each = " / ".join(f"{r:,}" for r in run["runs_events_per_s"])
        return f"{run['mean_events_per_s']:,} events/s (runs: {each})"

    rows = [
        (
            f"Direct-write ceiling: the same points ({ceil['fields_per_point']} fields each), "
            "pre-built, 5,000-line batches",
            f"{ceil['points_per_s']:,} points/s",
        ),
        ("End to end, WebSocket path, metrics on (mean)", rates(on)),
        ("End to end, WebSocket path, metrics off (mean)", rates(off)),
        ("End to end, MQTT path (eventstream), metrics on", f"{mqtt['events_per_s']:,} events/s"),
        ("MQTT path: offered by the publisher (QoS 1)", f"{mqtt['published_per_s']:,} messages/s"),
        (
            "Ratio end to end / ceiling (metrics on, mean)",
            f"{on['mean_events_per_s'] / ceil['points_per_s']:.2f}",
        ),
        (
            "Metrics overhead: throughput (means), CPU per event of listener + worker + web",
            f"{overhead['throughput_pct']} %, {overhead['cpu_pct']} %",
        ),
        (
            f"Lag HA → queryable at {lat['rate']:.0f} events/s p50 / p95 / p99",
            f"{lat['p50_s']} / {lat['p95_s']} / {lat['p99_s']} s",
        ),
        (
            "/health p99, /ready p99 at 500 events/s",
            f"{lat['health_p99_ms']} ms, {lat['ready_p99_ms']} ms",
        ),
        (
            "/health p99, /ready p99 at 1,000 events/s",
            f"{result['health_at_1000']['health_p99_ms']} ms, "
            f"{result['health_at_1000']['ready_p99_ms']} ms",
        ),
    ]
    for name, proc in on["processes"].items():
        if name in SERVICES:
            continue
        rows.append(
            (
                f"Peak RSS {name} (largest process of {proc['processes']}), median run",
                f"{proc['peak_rss_mib_max']} MiB",
            )
        )
    for name, cpu in on["cpu_s_per_1000_events"].items():
        rows.append((f"CPU s per 1,000 events: {name}, median run", f"{cpu}"))
    rows.append(
        (
            "Peak RSS listener, MQTT path",
            f"{mqtt['processes']['listener']['peak_rss_mib_max']} MiB",
        )
    )
    for name, cpu in mqtt["cpu_s_per_1000_events"].items():
        rows.append((f"CPU s per 1,000 events, MQTT path: {name}", f"{cpu}"))
    lines = ["| measure | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]]
    return "\n".join(lines)


def write_docs(result: dict, table: str) -> None:
    """The measured part of docs/benchmarks.md, between its markers; the rest is kept."""
    machine = result["machine"]
    generated = (
        f"{BEGIN}\nMeasured by `make bench` (`bench/pipeline.py`) on {machine['cpus']} cores, "
        f"{machine['platform']}, Python {machine['python']}, at {machine['load']} load average "
        "before the run; RabbitMQ, PostgreSQL, Mosquitto and InfluxDB 1.x of the same machine, "
        "the HA simulator as the source.\n\n"
        f"{table}\n\n## Against the targets\n\n{targets(result)}\n{END}"
    )
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = f"# Benchmarks\n\n{BEGIN}\n{END}\n\n" + text
    head, rest = text.split(BEGIN, 1)
    path.write_text(head + generated + rest.split(END, 1)[1])


def targets(result: dict) -> str:
    """DESIGN.md's targets, each with what this run measured."""
    on, lat, fast = result["throughput_metrics_on"], result["latency"], result["health_at_1000"]
    rss = {name: proc["peak_rss_mib_max"] for name, proc in on["processes"].items()}
    worst_health = max(lat["health_p99_ms"], fast["health_p99_ms"])
    worst_ready = max(lat["ready_p99_ms"], fast["ready_p99_ms"])
    rows = [
        ("≥ 20,000 events/s end to end", on["mean_events_per_s"] >= 20_000,
         f"{on['mean_events_per_s']:,} events/s (mean of {len(on['runs_events_per_s'])} runs)"),
        ("lag p50 ≤ 0.5 s, p99 ≤ 1.5 s at 500 events/s",
         lat["p50_s"] <= 0.5 and lat["p99_s"] <= 1.5,
         f"p50 {lat['p50_s']} s, p99 {lat['p99_s']} s"),
        ("listener ≤ 100 MiB RSS", rss["listener"] <= 100, f"{rss['listener']} MiB"),
        ("worker ≤ 150 MiB RSS (each process)", rss["worker"] <= 150, f"{rss['worker']} MiB"),
        ("metrics overhead ≤ 5 %", result["metrics_overhead"]["throughput_pct"] <= 5,
         f"{result['metrics_overhead']['throughput_pct']} % of throughput, "
         f"{result['metrics_overhead']['cpu_pct']} % of CPU per event"),
        ("health endpoints p99 ≤ 50 ms under load", max(worst_health, worst_ready) <= 50,
         f"/health {worst_health} ms, /ready {worst_ready} ms (worst of 500 and 1,000 events/s)"),
    ]  # fmt: skip
    lines = ["| target | met | measured |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if ok else '**no**'} | {value} |" for name, ok, value in rows]
    return "\n".join(lines)
