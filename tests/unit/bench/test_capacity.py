"""The capacity benchmark's decisions: the verdict on a phase, the rate stepping, the
capacity of a run, percentiles and the spread of runs."""

import pytest

from bench.capacity import (
    DEFAULT_TARGET,
    Ladder,
    PhaseOutcome,
    capacity,
    next_rate,
    nice,
    overwhelmed,
    parse_target,
    percentile,
    spread,
    verdict,
)

TARGET = parse_target(DEFAULT_TARGET)


def search(ladder: Ladder, sustains: float) -> list[tuple[float, bool]]:
    """Drive the ladder against a system that holds every rate up to ``sustains``."""
    tried: list[tuple[float, bool]] = []
    while (rate := next_rate(ladder, tried)) is not None:
        tried.append((rate, rate <= sustains))
    return tried


def test_default_target_follows_the_issue_table():
    assert TARGET.limit_ms(10) == 50
    assert TARGET.limit_ms(200) == 50
    assert TARGET.limit_ms(201) == 150
    assert TARGET.limit_ms(500) == 150
    assert TARGET.limit_ms(2000) == 250


def test_a_single_limit_applies_at_every_rate():
    target = parse_target("80")
    assert target.limit_ms(1) == target.limit_ms(10_000) == 80


@pytest.mark.parametrize("text", ["", "200:50", "50,200:150", "500:150,200:50,250", "x"])
def test_malformed_targets_are_refused(text):
    with pytest.raises(ValueError, match=r"limit|rise|could not convert"):
        parse_target(text)


def test_a_phase_holds_only_when_every_life_completes_within_the_p99_limit():
    assert verdict(PhaseOutcome(100, 2000, 2000, 49.9), TARGET) == (True, "")
    held, why = verdict(PhaseOutcome(100, 2000, 1999, 10.0), TARGET)
    assert not held
    assert "1 of 2000" in why
    held, why = verdict(PhaseOutcome(100, 2000, 2000, 50.1), TARGET)
    assert not held
    assert "p99" in why
    # Above 200/s the looser limit applies.
    assert verdict(PhaseOutcome(300, 6000, 6000, 120.0), TARGET)[0]
    assert not verdict(PhaseOutcome(0, 0, 0, 0.0), TARGET)[0]


def test_rates_are_rounded_to_two_significant_figures():
    assert [nice(x) for x in (10, 14.14, 28.3, 339.4, 1282.0, 5.46)] == [
        10,
        14,
        28,
        340,
        1300,
        5.5,
    ]


def test_the_ladder_climbs_then_bisects_to_the_resolution():
    ladder = Ladder(start=10, factor=2, resolution=1.2)
    tried = search(ladder, sustains=27)
    assert [r for r, _ in tried[:3]] == [10, 20, 40]
    assert capacity(tried) <= 27
    floor = capacity(tried)
    ceiling = min(r for r, ok in tried if not ok)
    assert ceiling / floor <= 1.2
    assert len({r for r, _ in tried}) == len(tried)  # no rate twice


def test_without_refinement_the_search_stops_at_the_first_failure():
    tried = search(Ladder(start=10, factor=2, resolution=2.0), sustains=50)
    assert tried == [(10, True), (20, True), (40, True), (80, False)]
    assert capacity(tried) == 40


def test_a_failing_start_steps_down_and_nothing_holding_gives_zero():
    tried = search(Ladder(start=40, factor=2, resolution=2.0, min_rate=5), sustains=12)
    assert [r for r, _ in tried] == [40, 20, 10]
    assert capacity(tried) == 10
    nothing = search(Ladder(start=40, factor=2, resolution=2.0, min_rate=5), sustains=1)
    assert capacity(nothing) == 0
    assert all(not ok for _, ok in nothing)


def test_the_climb_stops_at_the_maximum_rate_and_the_step_budget():
    tried = search(Ladder(start=100, factor=2, max_rate=300), sustains=10_000)
    assert [r for r, _ in tried] == [100, 200, 300]
    assert len(search(Ladder(start=1, factor=1.1, max_steps=5), sustains=10_000)) == 5


def test_a_failing_phase_is_retried_and_holds_when_the_retry_holds():
    ladder = Ladder(start=10, factor=2, resolution=2.0, retries=1)
    stalls = iter([False])  # the first attempt at 20/s meets a stall of the machine

    def holds(rate):
        return rate <= 50 and (rate != 20 or next(stalls, True))

    tried = []
    while (rate := next_rate(ladder, tried)) is not None:
        tried.append((rate, holds(rate)))
    assert tried == [(10, True), (20, False), (20, True), (40, True), (80, False), (80, False)]
    assert capacity(tried) == 40


def test_a_noisy_pass_above_a_failure_does_not_count():
    assert capacity([(10, True), (20, False), (15, True), (40, True)]) == 15


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 0) == 1
    with pytest.raises(ValueError, match="nothing"):
        percentile([], 50)


def test_spread_of_runs():
    s = spread([30, 10, 20])
    assert (s.low, s.median, s.high, s.runs) == (10, 20, 30, 3)
    assert str(s) == "20 (10 to 30, 3 runs)"
    assert str(spread([4.5])) == "4.5"
    assert spread([1, 2, 3, 4]).median == 2.5
    with pytest.raises(ValueError, match="nothing"):
        spread([])


def test_a_failure_far_past_capacity_is_not_retried():
    ladder = Ladder(start=10, factor=2, resolution=2.0, retries=1)
    tried = [(10, True), (20, False)]
    assert next_rate(ladder, tried) == 20  # a stall? once more
    assert next_rate(ladder, tried, retry_last=False) is None  # overwhelmed: done


def test_overwhelmed_means_lives_lost_or_a_p99_far_over_its_limit():
    assert overwhelmed(PhaseOutcome(100, 1000, 899, 10.0), TARGET)
    assert overwhelmed(PhaseOutcome(100, 1000, 1000, 201.0), TARGET)  # 4 x 50 ms
    assert not overwhelmed(PhaseOutcome(100, 1000, 900, 60.0), TARGET)
    assert not overwhelmed(PhaseOutcome(300, 1000, 1000, 600.0), TARGET)  # 4 x 150 ms
