"""The lag alert in a real Prometheus: with the projector stopped and events arriving, the
projector's lag rises and the expression of ``KeeperConsumerLagRising`` (read from
``infra/prometheus/rules.yml``) evaluates true; once the projector runs again it drains the
lag and the expression clears.

The lag comes from the code the API runs (``PipelineMonitor`` sampling the broker's end
offsets, exported by ``ingest_api.metrics.lag_families``), served on a loopback port that a
Prometheus started by ``infra/prometheus/prometheus.sh`` scrapes every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ingest_api.metrics import lag_families
from ingest_api.pipeline_health import PipelineHealthSettings, PipelineMonitor
from stream_agents.projector import ProjectorSettings, run_projector
from tests.fixtures.services import REPO_ROOT, run_infra, unavailable
from tests.fixtures.stack import free_port

pytestmark = pytest.mark.integration

RULES = REPO_ROOT / "infra" / "prometheus" / "rules.yml"


def rule_expression(alert: str) -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    [expr] = [r["expr"] for g in groups for r in g["rules"] if r.get("alert") == alert]
    return str(expr).strip()


class Lag(Collector):
    def __init__(self, monitor: PipelineMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        yield from lag_families(self.monitor)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Prometheus on a free port, scraping a target on another free port every second."""
    if not any(
        os.access(os.path.join(d, "prometheus"), os.X_OK)
        for d in os.environ.get("PATH", "").split(":")
    ):
        unavailable("prometheus", "not installed (infra/deps.sh installs it)")
    port, target = free_port(), free_port()
    env = {
        **os.environ,
        "KEEPER_STATE": str(tmp_path),
        "KEEPER_PROMETHEUS_PORT": str(port),
        "KEEPER_PROMETHEUS_INTERVAL": "1s",
        "KEEPER_API_PORT": str(target),
    }
    up = run_infra("infra/prometheus/prometheus.sh", "up", env=env, timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield f"http://127.0.0.1:{port}", target
    finally:
        run_infra("infra/prometheus/prometheus.sh", "down", env=env, timeout_s=60)


@pytest.fixture
async def monitor(
    kafka_bootstrap: str, event_topics: str, prometheus: tuple[str, int]
) -> AsyncIterator[PipelineMonitor]:
    settings = PipelineHealthSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=event_topics,
        agents_group=f"{event_topics}agents",
        sample_interval_s=0.5,
    )
    watching = PipelineMonitor(settings)
    registry = CollectorRegistry()
    registry.register(Lag(watching))
    server, _ = start_http_server(prometheus[1], "127.0.0.1", registry)
    watching.start()
    try:
        yield watching
    finally:
        await watching.stop()
        server.shutdown()
        server.server_close()


async def evaluates(url: str, expression: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        answer = await client.get("/api/v1/query", params={"query": expression})
    answer.raise_for_status()
    return bool(answer.json()["data"]["result"])


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def test_lag_rises_the_alert_expression_holds_and_clears_after_restart(
    kafka_bootstrap: str,
    event_topics: str,
    migrated_database_url: str,
    prometheus: tuple[str, int],
    monitor: PipelineMonitor,
) -> None:
    url, _ = prometheus
    rising = f"({rule_expression('KeeperConsumerLagRising')}) and on(part) " + (
        'keeper_consumer_group_lag{part="projector"}'
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    stop_sending = asyncio.Event()

    async def events_keep_arriving() -> None:  # no projector runs: they wait
        while not stop_sending.is_set():
            await producer.send_and_wait(f"{event_topics}order-events", b"not an event")
            await asyncio.sleep(0.1)

    sending = asyncio.create_task(events_keep_arriving())
    try:
        await until(lambda: evaluates(url, rising), "the lag rule's expression to hold")
        assert not await evaluates(url, 'keeper_consumer_group_lag{part="projector"} == 0')
    finally:
        stop_sending.set()
        await sending
        await producer.stop()

    stop = asyncio.Event()
    projector = asyncio.create_task(
        run_projector(
            ProjectorSettings(
                kafka_bootstrap_servers=kafka_bootstrap,
                database_url=migrated_database_url,
                topic_prefix=event_topics,
                max_wait_ms=100,
                metadata_max_age_ms=1000,
            ),
            stop,
        )
    )
    try:  # the projector dead-letters what it cannot write and commits: the lag drains
        await until(
            lambda: evaluates(url, 'keeper_consumer_group_lag{part="projector"} == 0'),
            "the projector to drain its lag",
        )
        await until(lambda: _not(evaluates(url, rising)), "the lag rule's expression to clear")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(projector, 30)


async def _not(result: Awaitable[bool]) -> bool:
    return not await result
