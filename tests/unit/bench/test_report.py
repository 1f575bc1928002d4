"""The benchmark's pure edges: ProducerPerformance's summary, Keeper's record sizes for the
raw pipeline, and the section written into docs/benchmarks.md from a run's results."""

import pytest

from bench._harness import replace_section
from bench.pipeline import raw_sizes, summarise
from bench.producer_perf import parse
from bench.raw_pipeline import RecordSizes
from bench.report import render, shown

PERF_OUTPUT = """\
312345 records sent, 62469.0 records/sec (29.79 MB/sec), 410.2 ms avg latency, 702.0 ms max.
1000000 records sent, 98123.4 records/sec (46.79 MB/sec), 455.12 ms avg latency, \
812.00 ms max latency, 430 ms 50th, 690 ms 95th, 760 ms 99th, 801 ms 99.9th.
"""


def test_the_last_producer_performance_summary_is_read():
    got = parse(PERF_OUTPUT)
    assert got["records"] == 1_000_000
    assert got["records_per_s"] == 98123.4
    assert got["mb_per_s"] == 46.79
    assert got["p99_latency_ms"] == 760.0


def test_output_without_a_summary_is_an_error():
    with pytest.raises(ValueError, match="no ProducerPerformance summary"):
        parse("Exception in thread main")


def test_raw_sizes_come_from_keepers_topics_and_the_weighted_mean_of_its_changelogs():
    per_topic = {
        "order-commands": 398,
        "order-events": 760,
        "keeper-agents-orders-changelog": 600,
        "keeper-agents-ledger-changelog": 100,
        "card-pool": 300,
    }
    counts = {
        "order-commands": 30,
        "keeper-agents-orders-changelog": 30,
        "keeper-agents-ledger-changelog": 10,
        "card-pool": 20,
    }
    assert raw_sizes(per_topic, counts) == RecordSizes(command=398, event=760, changelog=475)
    assert raw_sizes({}, {}) == RecordSizes()


def phase(rate, held, cpu, records=None, completed=None):
    started = int(rate * 10)
    return {
        "rate": rate,
        "started": started,
        "completed": started if completed is None else completed,
        "create_p50_ms": 10.0,
        "create_p99_ms": 40.0 if held else 900.0,
        "create_max_ms": 45.0 if held else 950.0,
        "life_p99_ms": 80.0,
        "held": held,
        "why": "" if held else "create p99 900 ms > 50 ms",
        "cpu_ms_per_life": cpu,
        "records_per_life": records or {},
        "records_produced": {},
        "balance_ok": True,
        "load_before": [1.0, 1.0, 1.0],
    }


def result():
    keeper_cpu = {"agents": 3.0, "api": 2.0, "kafka broker": 1.0, "load generator": 1.0}
    records = {"order-commands": 3.0, "order-events": 3.0}
    keeper = [
        {
            "capacity": cap,
            "saturated": True,
            "phases": [
                phase(cap, True, keeper_cpu, records),
                phase(cap * 2, False, keeper_cpu, records),
            ],
        }
        for cap in (100.0, 120.0, 80.0)
    ]
    raw = [
        {"capacity": 400.0, "saturated": True, "phases": [phase(400, True, {"desk": 0.5})]}
        for _ in range(3)
    ]
    http = [
        {"capacity": 800.0, "saturated": False, "phases": [phase(800, True, {"api": 0.9})]}
        for _ in range(3)
    ]
    perf = {
        "records": 1000,
        "records_per_s": 60_000.0,
        "mb_per_s": 30.0,
        "avg_latency_ms": 400.0,
        "p99_latency_ms": 700.0,
        "record_bytes": 500,
    }
    out = {"keeper": keeper, "raw": raw, "http": http, "perf": [perf] * 3}
    out["summary"] = summarise(out)
    out.update(
        raw_sizes={"command": 398, "event": 760, "changelog": 350},
        record_bytes={"mean": 500, "per_topic": {"order-commands": 398}},
        peak_rss_mib={"agents": 120.0},
        plan={
            "drain_s": 30,
            "phase_s": 20,
            "baseline_s": 10,
            "runs": 3,
            "timeout_s": 120,
            "keeper": {"retries": 1},
        },
        target="≤ 50 ms up to 200/s, ≤ 150 ms up to 500/s, ≤ 250 ms above",
        mode="full",
        versions=dict.fromkeys(
            (
                "python",
                "kafka",
                "postgresql",
                "faust-streaming",
                "aiokafka",
                "fastapi",
                "uvicorn",
            ),
            "1",
        ),
        machine="test machine",
        nproc=2,
        load_start=[1, 1, 1],
        load_end=[2, 2, 2],
        command=".venv/bin/python -m bench.pipeline",
        commit="abc1234",
        recorded="2026-12-06 23:00 UTC",
        wall_s=100.0,
    )
    return out


def test_summary_takes_medians_and_ratios_over_runs():
    s = result()["summary"]
    assert s["keeper"] == {"low": 80.0, "median": 100.0, "high": 120.0, "runs": 3}
    assert s["ratio_to_raw"] == 0.25
    assert s["ratio_to_http"] == 0.125
    assert s["cpu_ms_per_life_total"]["median"] == 6.0  # the generator is left out
    assert s["records_per_life"]["median"] == 6.0
    assert s["perf_lives_per_s_equivalent"] == 10_000.0
    assert s["saturated"] == {"keeper": True, "raw": True, "http": False}
    assert s["worst_create_ms"] == 950.0


def test_the_section_shows_capacity_ratios_cpu_and_the_unsaturated_bound():
    text = render(result())
    assert "**100 (80 to 120, 3 runs)**" in text
    assert "| **0.25** |" in text
    assert "≥ 800 (800 to 800, 3 runs)" in text
    assert "| agents | 3 (3 to 3, 3 runs) |" in text
    assert "**missed**" in text  # 100 lives/s is short of the 300 target
    assert "`.venv/bin/python -m bench.pipeline` (`make bench`)" in text


def test_a_spread_of_one_run_is_its_value():
    assert shown({"low": 5, "median": 5, "high": 5, "runs": 1}) == "5"
    assert shown(None) == "-"


def test_the_section_is_replaced_and_the_rest_of_the_document_kept(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n<!-- pipeline:start -->\nold\n<!-- pipeline:end -->\n\n## Notes\n\nkept\n"
    )
    replace_section(doc, "pipeline", "new figures", "Benchmarks")
    assert doc.read_text() == (
        "# Benchmarks\n\n<!-- pipeline:start -->\nnew figures\n<!-- pipeline:end -->\n\n"
        "## Notes\n\nkept\n"
    )
    replace_section(doc, "other", "more", "Benchmarks")
    assert doc.read_text().endswith("kept\n\n<!-- other:start -->\nmore\n<!-- other:end -->\n")
