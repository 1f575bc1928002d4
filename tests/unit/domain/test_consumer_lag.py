"""The judgment on a consumer group from samples of its offsets (no I/O)."""

from __future__ import annotations

import pytest

from domain.consumer_lag import GroupSample, LagPolicy, Verdict, assess

POLICY = LagPolicy(stall_after_s=30, no_member_grace_s=20, growth_samples=4, growth_min_lag=10)
TP = ("order-events", 0)


def sample(
    at_s: float, committed: int, end: int, members: int | None = 1, exists: bool = True
) -> GroupSample:
    return GroupSample(
        at_s=at_s,
        label="projector",
        group_id="keeper-projector",
        members=members,
        committed={TP: committed},
        lag=end - committed,
        exists=exists,
    )


def test_a_brand_new_system_with_no_group_and_empty_topics_is_fine():
    verdict = assess([sample(0, 0, 0, members=0, exists=False)], POLICY)
    assert verdict.verdict is Verdict.ABSENT
    assert not verdict.failing
    assert verdict.last_progress_s is None


def test_a_group_never_seen_is_absent_even_with_records_waiting():
    samples = [sample(t, 0, 5, members=0, exists=False) for t in range(0, 100, 5)]
    assert assess(samples, POLICY).verdict is Verdict.ABSENT


def test_caught_up_is_ok_however_long_the_offsets_stand_still():
    samples = [sample(t, 7, 7) for t in range(0, 300, 5)]
    verdict = assess(samples, POLICY)
    assert verdict.verdict is Verdict.OK
    assert verdict.last_progress_s == 0


def test_offsets_still_while_records_wait_past_the_threshold_is_stalled():
    samples = [sample(t, 3, 9) for t in range(0, 35, 5)]  # 30 s without progress
    verdict = assess(samples, POLICY)
    assert verdict.verdict is Verdict.STALLED
    assert verdict.failing
    assert "30 s" in verdict.reason
    assert verdict.lag == 6


def test_offsets_still_just_under_the_threshold_is_not_yet_stalled():
    samples = [sample(t, 3, 9) for t in range(0, 30, 5)]  # 25 s
    assert assess(samples, POLICY).verdict is Verdict.OK


def test_a_record_arriving_after_a_long_quiet_spell_is_not_a_stall():
    """The offsets stood still for minutes because nothing came; the wait starts now."""
    quiet = [sample(t, 3, 3) for t in range(0, 300, 5)]
    assert assess([*quiet, sample(300, 3, 4)], POLICY).verdict is Verdict.OK


def test_no_member_while_records_wait_past_the_grace_is_halted():
    samples = [sample(0, 3, 3), *[sample(t, 3, 9, members=0) for t in range(5, 30, 5)]]
    verdict = assess(samples, POLICY)
    assert verdict.verdict is Verdict.HALTED
    assert verdict.members == 0
    assert "no active member" in verdict.reason


def test_no_member_within_the_grace_is_not_yet_halted():
    samples = [sample(0, 3, 3), sample(5, 3, 9, members=0), sample(15, 3, 9, members=0)]
    assert assess(samples, POLICY).verdict is Verdict.OK


def test_unknown_members_never_count_as_none():
    samples = [sample(t, 3 + t, 9 + t, members=None) for t in range(0, 60, 5)]
    assert assess(samples, POLICY).verdict is Verdict.OK


def test_lag_rising_at_every_sample_is_falling_behind_even_with_progress():
    samples = [sample(t, 10 * t, 10 * t + 5 + 3 * t) for t in range(5)]  # lag 5, 8, ... 17
    verdict = assess(samples, POLICY)
    assert verdict.verdict is Verdict.FALLING_BEHIND
    assert "now 17" in verdict.reason


def test_lag_rising_with_one_dip_is_not_falling_behind():
    lags = [11, 14, 13, 16, 19]
    samples = [sample(t, 10 * t, 10 * t + lag) for t, lag in enumerate(lags)]
    assert assess(samples, POLICY).verdict is Verdict.OK


def test_lag_rising_below_the_minimum_is_not_falling_behind():
    samples = [sample(t, 10 * t, 10 * t + 1 + t) for t in range(5)]  # lag 1..5
    assert assess(samples, POLICY).verdict is Verdict.OK


def test_a_stalled_group_that_moves_again_recovers():
    stalled = [sample(t, 3, 9) for t in range(0, 40, 5)]
    assert assess(stalled, POLICY).verdict is Verdict.STALLED
    moving = [*stalled, sample(40, 8, 9)]
    verdict = assess(moving, POLICY)
    assert verdict.verdict is Verdict.OK
    assert verdict.last_progress_s == 40
    assert assess([*moving, sample(45, 9, 9)], POLICY).reason == "caught up"


def test_a_halted_group_whose_member_returns_recovers():
    halted = [sample(0, 3, 3), *[sample(t, 3, 9, members=0) for t in range(5, 30, 5)]]
    assert assess(halted, POLICY).verdict is Verdict.HALTED
    assert assess([*halted, sample(30, 4, 9)], POLICY).verdict is Verdict.OK


def test_assess_needs_a_sample():
    with pytest.raises(AssertionError):
        assess([], POLICY)
