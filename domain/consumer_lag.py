"""Is a consumer group keeping up? A pure judgment over samples of its offsets.

A sampler (``ingest_api.pipeline_health``) reads, every few seconds, each pipeline group's
committed offsets, the end offsets of the partitions it reads and how many members it has.
:func:`assess` turns the samples of one group, oldest first, into a :class:`GroupVerdict`:

* ``ok``: nothing waits, or the group makes progress;
* ``absent``: the group has never existed in the samples (a brand-new system, or a part that
  is not deployed): not a failure;
* ``halted``: records wait and no member has been in the group for ``no_member_grace_s``;
* ``stalled``: records wait and the committed offsets have not moved for ``stall_after_s``;
* ``falling_behind``: the lag rose at each of the last ``growth_samples`` samples.

The last three are failures: readiness reports them as not ready.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

#: A partition as ``(topic, partition)``.
Partition = tuple[str, int]


class Verdict(StrEnum):
    OK = "ok"
    ABSENT = "absent"
    HALTED = "halted"
    STALLED = "stalled"
    FALLING_BEHIND = "falling_behind"

    @property
    def failing(self) -> bool:
        return self in {Verdict.HALTED, Verdict.STALLED, Verdict.FALLING_BEHIND}


@dataclass(frozen=True, slots=True)
class LagPolicy:
    stall_after_s: float = 30.0
    no_member_grace_s: float = 30.0
    growth_samples: int = 10
    #: Lag at or below this never counts as falling behind (a busy but healthy consumer).
    growth_min_lag: int = 0

    def __post_init__(self) -> None:
        assert self.stall_after_s >= 0
        assert self.no_member_grace_s >= 0
        assert self.growth_samples >= 2
        assert self.growth_min_lag >= 0


@dataclass(frozen=True, slots=True)
class GroupSample:
    """One reading of one group at ``at_s`` (seconds since the epoch)."""

    at_s: float
    label: str
    group_id: str
    #: Active members (None: the broker's answer could not be read).
    members: int | None
    #: The group's committed offset per partition it reads (log start where none yet).
    committed: Mapping[Partition, int]
    lag: int
    #: The broker knows the group (it has members or committed offsets).
    exists: bool
    #: The lag of each partition the group reads (they sum to ``lag``; metrics export them).
    partition_lag: Mapping[Partition, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.lag >= 0
        assert self.members is None or self.members >= 0


@dataclass(frozen=True, slots=True)
class GroupVerdict:
    label: str
    group_id: str
    verdict: Verdict
    reason: str
    members: int | None
    lag: int
    #: When the committed offsets last moved (the oldest sample if never seen moving).
    last_progress_s: float | None

    @property
    def failing(self) -> bool:
        return self.verdict.failing


def assess(samples: Sequence[GroupSample], policy: LagPolicy) -> GroupVerdict:
    """The verdict on one group from its samples, oldest first (at least one)."""
    assert samples, "assess needs at least one sample"
    now = samples[-1]
    seen = any(s.exists for s in samples)
    progress = last_progress(samples) if seen else None

    def verdict(kind: Verdict, reason: str) -> GroupVerdict:
        return GroupVerdict(now.label, now.group_id, kind, reason, now.members, now.lag, progress)

    if not seen:
        return verdict(Verdict.ABSENT, f"no such group yet ({now.lag} records in its topics)")
    if now.lag == 0:
        return verdict(Verdict.OK, "caught up")
    waiting = streak_start(samples, lambda s: s.lag > 0)
    no_members = streak_start(samples, lambda s: s.members == 0 and s.lag > 0)
    if no_members is not None and now.at_s - no_members >= policy.no_member_grace_s:
        return verdict(
            Verdict.HALTED,
            f"no active member for {now.at_s - no_members:.0f} s while {now.lag} records wait",
        )
    stuck_since = max(progress or 0.0, waiting) if waiting is not None else None
    if stuck_since is not None and now.at_s - stuck_since >= policy.stall_after_s:
        return verdict(
            Verdict.STALLED,
            f"committed offsets have not moved for {now.at_s - stuck_since:.0f} s "
            f"while {now.lag} records wait",
        )
    if lag_rising(samples, policy):
        return verdict(
            Verdict.FALLING_BEHIND,
            f"lag rose at each of the last {policy.growth_samples} samples, now {now.lag}",
        )
    return verdict(Verdict.OK, f"{now.lag} records to go, progressing")


def last_progress(samples: Sequence[GroupSample]) -> float:
    """When the committed offsets last changed (the first sample's time if they never did)."""
    for newer, older in zip(reversed(samples), reversed(samples[:-1]), strict=False):
        if moved(older.committed, newer.committed):
            return newer.at_s
    return samples[0].at_s


def moved(before: Mapping[Partition, int], after: Mapping[Partition, int]) -> bool:
    """Some partition's committed offset advanced (a new partition counts as progress)."""
    return any(offset > before.get(tp, -1) for tp, offset in after.items())


def streak_start(
    samples: Sequence[GroupSample], holds: Callable[[GroupSample], bool]
) -> float | None:
    """When the run of samples, up to the newest, for which ``holds`` is true began."""
    start: float | None = None
    for sample in reversed(samples):
        if not holds(sample):
            break
        start = sample.at_s
    return start


def lag_rising(samples: Sequence[GroupSample], policy: LagPolicy) -> bool:
    recent = samples[-(policy.growth_samples + 1) :]
    if len(recent) < policy.growth_samples + 1 or recent[-1].lag <= policy.growth_min_lag:
        return False
    return all(b.lag > a.lag for a, b in itertools.pairwise(recent))
