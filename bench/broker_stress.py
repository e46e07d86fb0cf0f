"""Stress test of a no-server Celery broker: concurrent producers and consumers, every message
accounted for (none lost, none twice), with throughput and delivery latency.

    .venv/bin/python bench/broker_stress.py --transport embedded --messages 100000
    .venv/bin/python bench/broker_stress.py --transport filesystem     (kombu's own)
    .venv/bin/python bench/broker_stress.py --transport sqlalchemy     (needs SQLAlchemy)

Producers publish persistent messages ({"p": producer, "n": number, "t": time}); consumers ack
each one and record it. Figures: docs/benchmarks.md, "Embedded broker".
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kombu import Connection, Consumer, Exchange, Producer, Queue

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUEUE = Queue("stress", Exchange("stress", type="direct"), routing_key="stress", durable=True)


@dataclass
class Result:
    transport: str
    messages: int
    received: int
    lost: int
    duplicated: int
    seconds: float
    per_second: float
    latency_p50_ms: float
    latency_p99_ms: float


def connection(transport: str, folder: Path) -> Connection:
    if transport == "sqlalchemy":
        return Connection(f"sqla+sqlite:///{folder}/broker.sqlite3")
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.01 if transport == "filesystem-10ms" else None,
    }
    options = {k: v for k, v in options.items() if v is not None}
    if transport == "embedded":
        from ingestor_project.embedded_broker import Transport

        return Connection(transport=Transport, transport_options=options)
    return Connection("filesystem://", transport_options=options)


def produce(transport: str, folder: Path, producer: int, count: int) -> None:
    with connection(transport, folder) as conn:
        publish = Producer(conn.channel(), exchange=QUEUE.exchange, routing_key="stress").publish
        for n in range(count):
            body = {"p": producer, "n": n, "t": time.time()}
            publish(body, serializer="json", delivery_mode=2, declare=[QUEUE])


def consume(transport: str, folder: Path, index: int, total: int, seen, out: Path) -> None:
    got: list[tuple[int, int, float]] = []

    def on_message(body: dict, message) -> None:
        got.append((body["p"], body["n"], time.time() - body["t"]))
        message.ack()
        with seen.get_lock():
            seen.value += 1

    with connection(transport, folder) as conn:
        channel = conn.channel()
        channel.basic_qos(0, 10, False)
        with Consumer(channel, queues=[QUEUE], callbacks=[on_message], accept=["json"]):
            while seen.value < total:
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    continue
    (out / f"consumer-{index}.json").write_text(json.dumps(got))


def stress(
    transport: str, messages: int, producers: int, consumers: int, folder: Path, deadline: float
) -> Result:
    folder.mkdir(parents=True, exist_ok=True)
    with connection(transport, folder) as conn:
        QUEUE(conn.channel()).declare()
    seen = mp.Value("q", 0)
    share = messages // producers
    start = time.monotonic()
    workers = [
        mp.Process(target=consume, args=(transport, folder, i, share * producers, seen, folder))
        for i in range(consumers)
    ] + [mp.Process(target=produce, args=(transport, folder, i, share)) for i in range(producers)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(max(1.0, deadline - (time.monotonic() - start)))
    seconds = time.monotonic() - start
    for process in workers:
        if process.is_alive():
            process.kill()
            process.join()
    return tally(transport, share * producers, folder, consumers, seconds)


def tally(transport: str, sent: int, folder: Path, consumers: int, seconds: float) -> Result:
    records = []
    for index in range(consumers):
        path = folder / f"consumer-{index}.json"
        records += json.loads(path.read_text()) if path.exists() else []
    ids = [(p, n) for p, n, _ in records]
    latencies = sorted(latency * 1000 for *_, latency in records) or [0.0]
    return Result(
        transport=transport,
        messages=sent,
        received=len(ids),
        lost=sent - len(set(ids)),
        duplicated=len(ids) - len(set(ids)),
        seconds=round(seconds, 2),
        per_second=round(len(ids) / seconds),
        latency_p50_ms=round(statistics.median(latencies), 1),
        latency_p99_ms=round(latencies[int(len(latencies) * 0.99) - 1], 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", default="embedded")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=1800.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="broker-stress-") as folder:
        result = stress(
            args.transport,
            args.messages,
            args.producers,
            args.consumers,
            Path(folder),
            args.deadline,
        )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
