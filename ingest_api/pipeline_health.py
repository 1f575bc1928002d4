"""Are the pipeline's consumers keeping up? Sampled from the broker, judged by
:func:`domain.consumer_lag.assess`.

For each consumer group of the pipeline (the agents, the projector, the card projector, the
callbacks intake) a :class:`PipelineSampler` reads the committed offsets, the end offsets of
the partitions the group reads, and the group's members, through one admin client and one
group-less consumer. :class:`PipelineMonitor` does so every ``sample_interval_s`` in the
background of the API process and keeps a short history per group; ``/readyz`` reads its
verdicts without touching the broker. ``python -m ingest_api.pipeline_health`` (``make
status``) samples for a few seconds itself and prints the same verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.consumer_lag import GroupSample, GroupVerdict, LagPolicy, Partition, assess
from schemas.topics import (
    CARD_ALERTS,
    CARD_TURNOVER,
    CONFIG_CARDS,
    LEDGER_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
)

log = logging.getLogger(__name__)


class PipelineHealthSettings(BaseSettings):
    """How the pipeline is watched (``KEEPER_HEALTH_*``; the API and ``make status``)."""

    model_config = SettingsConfigDict(
        env_prefix="KEEPER_HEALTH_", extra="ignore", validate_by_name=True
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "KEEPER_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_prefix: str = Field("", validation_alias=AliasChoices("KEEPER_TOPIC_PREFIX"))
    #: The agents' consumer group is their Faust app id (no prefix is added to it).
    agents_group: str = Field(
        "keeper-agents",
        validation_alias=AliasChoices("KEEPER_HEALTH_AGENTS_GROUP", "KEEPER_AGENTS_APP_ID"),
    )
    #: Watch the pipeline from the API process (``/readyz``).
    monitor: bool = True
    sample_interval_s: float = Field(5.0, gt=0)
    #: Records wait and the committed offsets have not moved this long: stalled.
    stall_after_s: float = Field(30.0, ge=0)
    #: Records wait and the group has had no member this long: halted.
    no_member_grace_s: float = Field(30.0, ge=0)
    #: The lag rose at each of this many samples in a row: falling behind.
    growth_samples: int = Field(6, ge=2)
    growth_min_lag: int = Field(50, ge=0)
    request_timeout_s: float = Field(5.0, gt=0)

    def policy(self) -> LagPolicy:
        return LagPolicy(
            stall_after_s=self.stall_after_s,
            no_member_grace_s=self.no_member_grace_s,
            growth_samples=self.growth_samples,
            growth_min_lag=self.growth_min_lag,
        )

    def groups(self) -> tuple[WatchedGroup, ...]:
        return pipeline_groups(self.topic_prefix, self.agents_group)


@dataclass(frozen=True, slots=True)
class WatchedGroup:
    label: str
    group_id: str
    #: The topics the group reads (a partition it has not committed yet counts from the
    #: log start: every pipeline consumer starts from the earliest offset).
    topics: tuple[str, ...]


def pipeline_groups(prefix: str, agents_group: str) -> tuple[WatchedGroup, ...]:
    """The pipeline's consumer groups (group ids as the processes' settings make them)."""

    def topics(*names: str) -> tuple[str, ...]:
        return tuple(prefix + name for name in names)

    return (
        WatchedGroup(
            "agents",
            agents_group,
            topics(ORDER_COMMANDS.name, CONFIG_CARDS.name),
        ),
        WatchedGroup(
            "projector",
            prefix + "keeper-projector",
            topics(ORDER_EVENTS.name, LEDGER_EVENTS.name),
        ),
        WatchedGroup(
            "card-projector",
            prefix + "keeper-card-projector",
            topics(CARD_TURNOVER.name, CARD_ALERTS.name),
        ),
        WatchedGroup("callbacks", prefix + "keeper-callbacks", topics(ORDER_EVENTS.name)),
    )


# --- sampling (I/O) ------------------------------------------------------------------------


class PipelineSampler:
    """One admin client and one group-less consumer, reused for every sample."""

    def __init__(
        self, bootstrap_servers: str, groups: Sequence[WatchedGroup], *, timeout_s: float = 5.0
    ) -> None:
        self.groups = tuple(groups)
        timeout_ms = int(timeout_s * 1000)
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms
        )
        self._offsets = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=timeout_ms,
        )
        self._timeout_s = timeout_s

    async def start(self) -> None:
        try:
            await self._admin.start()
            await self._offsets.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._offsets.stop()
        with contextlib.suppress(Exception):
            await self._admin.close()

    async def sample(self) -> list[GroupSample]:
        return await asyncio.wait_for(self._sample(), self._timeout_s * 2)

    async def _sample(self) -> list[GroupSample]:
        at_s = time.time()
        partitions = await self._partitions({t for g in self.groups for t in g.topics})
        everything = [tp for tps in partitions.values() for tp in tps]
        ends = await self._offsets.end_offsets(everything) if everything else {}
        starts = await self._offsets.beginning_offsets(everything) if everything else {}
        members = await self._members([g.group_id for g in self.groups])
        samples = []
        for group in self.groups:
            raw = await self._admin.list_consumer_group_offsets(group.group_id)
            committed = {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in raw.items()
                if meta.offset >= 0
            }
            mine = [tp for t in group.topics for tp in partitions.get(t, [])]
            samples.append(group_sample(at_s, group, members, committed, mine, starts, ends))
        return samples

    async def _partitions(self, topics: Iterable[str]) -> dict[str, list[TopicPartition]]:
        described = await self._admin.describe_topics(sorted(topics))
        found: dict[str, list[TopicPartition]] = {}
        for topic in described:
            if topic.get("error_code", 0) or not topic.get("partitions"):
                continue  # not created yet: nothing to read
            name = topic["topic"]
            found[name] = [TopicPartition(name, p["partition"]) for p in topic["partitions"]]
        return found

    async def _members(self, group_ids: list[str]) -> dict[str, int | None]:
        """Members per group; None where the broker's answer could not be read.

        One group per request: aiokafka misreads the second and later groups of a
        multi-group DescribeGroups answer from a Kafka 4 broker."""
        counts: dict[str, int | None] = {}
        for group_id in group_ids:
            try:
                [response] = await self._admin.describe_consumer_groups([group_id])
                [described] = response.to_object()["groups"]
            except Exception as exc:
                log.warning("cannot describe group %s: %s", group_id, exc)
                counts[group_id] = None
                continue
            ok = described.get("error_code") == 0 and described.get("group") == group_id
            counts[group_id] = len(described.get("members") or []) if ok else None
        return counts


def group_sample(
    at_s: float,
    group: WatchedGroup,
    members: Mapping[str, int | None],
    committed: Mapping[Partition, int],
    partitions: Iterable[TopicPartition],
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
) -> GroupSample:
    """One group's sample: its committed offsets (the log start where it has none yet)."""
    positions: dict[Partition, int] = dict(committed)
    partition_lag: dict[Partition, int] = {}
    for tp in partitions:
        key = (tp.topic, tp.partition)
        position = positions.setdefault(key, starts.get(tp, 0))
        partition_lag[key] = max(0, ends.get(tp, 0) - position)
    lag = sum(partition_lag.values())
    count = members.get(group.group_id)
    return GroupSample(
        at_s=at_s,
        label=group.label,
        group_id=group.group_id,
        members=count,
        committed=positions,
        lag=lag,
        exists=bool(committed) or bool(count),
        partition_lag=partition_lag,
    )


# --- the API's background monitor -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PipelineReport:
    """What readiness says about the pipeline."""

    verdicts: tuple[GroupVerdict, ...]
    sampled_at_s: float | None
    error: str | None
    #: How long the monitor has gone without a good sample (0 while it sees).
    blind_s: float = 0.0

    @property
    def failing(self) -> list[GroupVerdict]:
        return [v for v in self.verdicts if v.failing]


class PipelineMonitor:
    """Samples the pipeline's groups every ``sample_interval_s`` and keeps their history."""

    def __init__(self, settings: PipelineHealthSettings) -> None:
        self.settings = settings
        self._policy = settings.policy()
        self._sampler: PipelineSampler | None = None
        self._history: dict[str, deque[GroupSample]] = {}
        self._keep = history_length(settings)
        self._task: asyncio.Task[None] | None = None
        self._sampled_at_s: float | None = None
        self._error: str | None = None
        self._started_s = time.monotonic()
        self._last_ok_s: float | None = None

    def start(self) -> None:
        """Sample in the background from now on (the broker may still be away)."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="pipeline-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sample_once(self) -> None:
        """Take one sample now (the loop does this every interval)."""
        try:
            if self._sampler is None:
                raise RuntimeError("not connected")
            samples = await self._sampler.sample()
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("pipeline sample failed: %s", self._error)
            return
        self._error = None
        self._last_ok_s = time.monotonic()
        for sample in samples:
            self._history.setdefault(sample.group_id, deque(maxlen=self._keep)).append(sample)
        self._sampled_at_s = samples[0].at_s if samples else time.time()

    def report(self) -> PipelineReport:
        verdicts = tuple(assess(list(h), self._policy) for h in self._history.values() if h)
        return PipelineReport(verdicts, self._sampled_at_s, self._error, self._blind_s())

    def latest(self) -> list[GroupSample]:
        """The newest sample of each group (what ``/metrics`` exports as lag)."""
        return [history[-1] for history in self._history.values() if history]

    def _blind_s(self) -> float:
        """How long the monitor has gone without a good sample (0 while it sees)."""
        if self._error is None:
            return 0.0
        return time.monotonic() - (self._last_ok_s or self._started_s)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        try:
            self._sampler = await self._connect()
            while True:
                await self.sample_once()
                await asyncio.sleep(self.settings.sample_interval_s)
        finally:
            if self._sampler is not None:
                await self._sampler.close()
                self._sampler = None

    async def _connect(self) -> PipelineSampler:
        while True:
            sampler = PipelineSampler(
                self.settings.kafka_bootstrap_servers,
                self.settings.groups(),
                timeout_s=self.settings.request_timeout_s,
            )
            try:
                await sampler.start()
                return sampler
            except Exception as exc:
                self._error = f"cannot reach the broker: {type(exc).__name__}: {exc}"[:300]
                log.warning("pipeline monitor: %s", self._error)
                await asyncio.sleep(self.settings.sample_interval_s)


def history_length(settings: PipelineHealthSettings) -> int:
    """Enough samples to see a stall, a missing member and a growth run through."""
    span_s = max(settings.stall_after_s, settings.no_member_grace_s)
    return math.ceil(span_s / settings.sample_interval_s) + settings.growth_samples + 2
