"""Baseline (a): Kafka's own producer benchmark, ``org.apache.kafka.tools.ProducerPerformance``,
from the jars ``infra/kafka/kafka.sh fetch`` keeps in ``~/.cache/keeper`` (the broker's own
classpath), with ``acks=all`` and idempotence: the physical limit of this broker on this
machine for records of Keeper's mean size.

    .venv/bin/python -m bench.producer_perf --bootstrap 127.0.0.1:9092 --size 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench._harness import kafka_version

#: ``100000 records sent, 45871.6 records/sec (38.62 MB/sec), 512.3 ms avg latency, ...``
SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency(?:, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th)?"
)


def classpath() -> str:
    cache = Path(os.environ.get("KEEPER_CACHE", Path.home() / ".cache" / "keeper"))
    libs = cache / f"kafka-{os.environ.get('KAFKA_VERSION', kafka_version())}" / "libs"
    if not libs.is_dir():
        raise FileNotFoundError(f"{libs}: run `infra/kafka/kafka.sh fetch` first")
    return f"{libs}/*"


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else (shutil.which("java") or "java")


def parse(output: str) -> dict[str, Any]:
    """The last summary line ProducerPerformance prints (it prints one per window too)."""
    found = SUMMARY.findall(output)
    if not found:
        raise ValueError(f"no ProducerPerformance summary in:\n{output[-2000:]}")
    sent, per_s, mb_s, avg_ms, max_ms, _p50, _p95, p99 = found[-1]
    return {
        "records": int(sent),
        "records_per_s": float(per_s),
        "mb_per_s": float(mb_s),
        "avg_latency_ms": float(avg_ms),
        "max_latency_ms": float(max_ms),
        "p99_latency_ms": float(p99) if p99 else None,
    }


async def _topic(bootstrap: str, name: str, partitions: int, create: bool) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if create:
            await admin.create_topics([NewTopic(name, partitions, 1)])
            await asyncio.sleep(1)  # the partitions' leaders
        else:
            await admin.delete_topics([name])
    finally:
        await admin.close()


def measure(
    bootstrap: str, *, size: int, records: int, partitions: int = 4, linger_ms: int = 5
) -> dict[str, Any]:
    """One run at full speed (``--throughput -1``) into a fresh topic."""
    topic = f"perf-{uuid.uuid4().hex[:8]}"
    asyncio.run(_topic(bootstrap, topic, partitions, create=True))
    try:
        command = [
            java(),
            "-Xmx512m",
            "-cp",
            classpath(),
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            "acks=all",
            "enable.idempotence=true",
            f"linger.ms={linger_ms}",
        ]
        done = subprocess.run(  # noqa: S603 - our own java and the cached Kafka jars
            command, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"ProducerPerformance failed:\n{done.stdout}{done.stderr}")
        result = parse(done.stdout)
    finally:
        asyncio.run(_topic(bootstrap, topic, partitions, create=False))
    result.update(record_bytes=size, partitions=partitions, linger_ms=linger_ms, acks="all")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--records", type=int, default=500_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.bootstrap, size=args.size, records=args.records)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
