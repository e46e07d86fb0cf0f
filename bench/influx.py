"""InfluxDB as the benchmark sees it: queries, what landed, and the direct-write ceiling."""

from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import urlencode
from urllib.request import Request, urlopen

INFLUX = os.environ.get("BENCH_INFLUX_URL", "http://127.0.0.1:18086")
# Lines per write in the ceiling: the batch size DESIGN.md's ceiling is defined with.
CEILING_BATCH = 5000


def influx_query(q: str, db: str | None = None) -> dict:
    params = {"q": q, "epoch": "ns", **({"db": db} if db else {})}
    with urlopen(Request(f"{INFLUX}/query", data=urlencode(params).encode()), timeout=60) as r:
        return json.load(r)


def count_points(db: str) -> int:
    # Every simulated entity has a friendly_name, so every point has friendly_name_str.
    result = influx_query("SELECT count(friendly_name_str) FROM /.*/", db)["results"][0]
    return sum(series["values"][0][1] for series in result.get("series", []))


def points_written(db: str) -> int:
    """Points InfluxDB has written into ``db``: its own per-shard counter (``writePointsOk``),
    a millisecond or two, where count_points scans every point and slows as they grow. A point
    written twice (a retried batch) counts twice. Servers without ``SHOW STATS`` get
    count_points."""
    result = influx_query("SHOW STATS FOR 'shard'")["results"][0]
    if "error" in result:
        return count_points(db)
    return sum(
        dict(zip(series["columns"], series["values"][0], strict=True))["writePointsOk"]
        for series in result.get("series", [])
        if series.get("tags", {}).get("database") == db
    )


def write_ceiling(lines: list[str]) -> dict:
    """Pre-built line protocol in CEILING_BATCH-line batches straight to InfluxDB, timed, into a
    database of its own that is dropped afterwards."""
    from tasks.influx import V1Writer

    db = f"bench_ceiling_{uuid.uuid4().hex[:8]}"
    influx_query(f'CREATE DATABASE "{db}"')
    writer = V1Writer(INFLUX, db, gzip_bodies=True)
    try:
        started = time.perf_counter()
        for i in range(0, len(lines), CEILING_BATCH):
            writer.write(lines[i : i + CEILING_BATCH])
        elapsed = time.perf_counter() - started
    finally:
        influx_query(f'DROP DATABASE "{db}"')
    return {
        "points": len(lines),
        "seconds": round(elapsed, 2),
        "points_per_s": round(len(lines) / elapsed),
        "fields_per_point": round(sum(line.count("=") for line in lines[:1000]) / 1000 - 2, 1),
    }
