"""The System health figures: histogram quantiles as Prometheus computes them, the latency
window between scrapes, and a direct scrape of processes (one of them down)."""

from __future__ import annotations

import pytest

from ops_console import health
from tests.fixtures.fake_metrics import FakeProcesses, populate


def test_quantile_interpolates_inside_the_bucket_like_prometheus():
    buckets = [(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)]
    assert health.quantile(0.5, buckets) == pytest.approx(0.1)
    assert health.quantile(0.75, buckets) == pytest.approx(0.15)
    assert health.quantile(0.99, buckets) == pytest.approx(0.198)


def test_quantile_beyond_the_last_bound_is_that_bound_and_empty_is_none():
    assert health.quantile(0.99, [(0.25, 90.0), (float("inf"), 100.0)]) == 0.25
    assert health.quantile(0.5, [(0.25, 0.0), (float("inf"), 0.0)]) is None
    assert health.quantile(0.5, []) is None


def test_the_window_is_the_difference_with_the_oldest_scrape_of_five_minutes():
    history = health.ScrapeHistory()
    first = [(0.1, 10.0), (float("inf"), 10.0)]
    assert history.window(1000.0, first) == (first, None)
    later = [(0.1, 10.0), (float("inf"), 14.0)]
    assert history.window(1100.0, later) == ([(0.1, 0.0), (float("inf"), 4.0)], 100.0)
    # Older than 5 min is forgotten; a counter reset (a restart) takes the new one alone.
    reset = [(0.1, 1.0), (float("inf"), 1.0)]
    assert history.window(1450.0, reset) == (reset, None)


def test_a_direct_scrape_reads_every_figure_and_names_the_process_down(
    fake_processes: FakeProcesses,
):
    populate(fake_processes, creates_ms=[20] * 98 + [400, 400])
    found = health.scrape(fake_processes.targets, health.ScrapeHistory())
    assert found.source == "scrape"
    assert found.down == ["reconciler"]
    assert found.components["api"] is True
    assert {(g.part, g.lag) for g in found.lag} == {("projector", 42), ("agents", 0)}
    assert found.queue_depth == 2
    assert found.queue_oldest_s == 180
    assert found.create_p50_s == pytest.approx(0.01 + 0.015 * 50 / 98)  # the 10-25 ms bucket
    assert found.create_p99_s == pytest.approx(0.375)  # half-way into the 250-500 ms bucket
    assert found.latency_window_s is None  # the first reading: since the API started
    assert (found.callbacks_pending, found.callbacks_dead) == (3, 1)
    assert found.reconcile_mismatches is None


def test_without_prometheus_the_processes_are_read(fake_processes: FakeProcesses):
    populate(fake_processes, creates_ms=[30])
    nowhere = fake_processes.targets["reconciler"].removesuffix("/metrics")
    found = health.read_health(nowhere, fake_processes.targets)
    assert found.source == "scrape"
    assert found.queue_depth == 2
