"""Capacity: the highest rate of full order lives Keeper sustains, what each life costs every
process in CPU, and three baselines measured in the same run (issue 13, part 5).

Brings up a private Keeper (``bench/stack.py``: own broker and PostgreSQL on free ports,
Keeper's processes under ``infra/keeper.sh`` as ``make run`` starts them) and drives it
through the signed HTTP API, open-loop (``bench/lives.py``). Then:

1. **Keeper, stepped.** Full lives (create → payer confirms → operator approves → the row
   ``approved`` with its ``deposit_credit`` posting in PostgreSQL) at a rising rate: double
   while a phase holds, then bisect between the highest rate that held and the lowest that
   did not (``bench/capacity.py``). A phase holds when every life it started completed and
   create's p99 from the due time stays within the target (``--p99``). Each phase has a
   partner, pool and cards of its own, so one phase's open orders cannot slow the next.
   The whole search runs ``runs`` times; the report gives the spread.
2. **CPU-ms per life** of every process (agents, api, projector, card-projector,
   callbacks, broker, PostgreSQL, load generator) in each phase: the primary figure,
   since latencies and rates move with the load of a shared machine and CPU time hardly does.
3. **Baselines**, Keeper's processes stopped, same broker: (a) Kafka's own producer benchmark
   (``bench/producer_perf.py``), (b) the new design's topology in raw aiokafka at stepped
   rates (``bench/raw_pipeline.py``), (c) a FastAPI app that does no work answering the same
   requests from the same generator (``bench/null_api.py``). Keeper's capacity is reported
   as a ratio to (b) and to (c).

    .venv/bin/python -m bench.pipeline [--quick] [--runs N] [--p99 200:50,500:150,250]

Results: ``bench/results/<timestamp>.json`` (and ``latest.json``) and the "Pipeline" section
of ``docs/benchmarks.md``. Nothing is asserted: targets are reported as met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from bench import producer_perf, raw_pipeline  # noqa: E402
from bench._harness import machine, replace_section  # noqa: E402
from bench.capacity import (  # noqa: E402
    DEFAULT_TARGET,
    Ladder,
    P99Target,
    PhaseOutcome,
    capacity,
    next_rate,
    overwhelmed,
    parse_target,
    percentile,
    saturated,
    spread,
    verdict,
)
from bench.kafka_topics import record_sizes, topic_offsets  # noqa: E402
from bench.lives import Desk, Driver, LifeStats, open_loop  # noqa: E402
from bench.proc import cpu_seconds, load, peak_rss_mib  # noqa: E402
from bench.report import render, shown  # noqa: E402
from bench.stack import BROKER, GENERATOR, OPERATORS, PASSWORD, BenchStack, null_api  # noqa: E402
from schemas.topics import ORDER_COMMANDS, ORDER_EVENTS  # noqa: E402

MARKER = "pipeline"
TITLE = "Benchmarks"
RESULTS = REPO_ROOT / "bench" / "results"
#: How long the raw pipeline's API stand-in awaits one command's event: far past any rate
#: that holds, and short enough that a phase far beyond capacity does not take minutes.
RAW_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Plan:
    runs: int
    #: Seconds of offered load per Keeper phase.
    phase_s: float
    #: How long after its last request a phase's lives may take to reach PostgreSQL.
    drain_s: float
    #: After a phase that did not hold: how long to let its backlog clear before the next.
    settle_s: float
    #: The client's timeout per request, above any latency the report can show.
    timeout_s: float
    keeper: Ladder
    baseline_s: float
    raw: Ladder
    http: Ladder
    perf_records: int


QUICK = Plan(
    runs=1,
    phase_s=5,
    drain_s=10,
    settle_s=30,
    timeout_s=60,
    keeper=Ladder(start=10, factor=2, resolution=2.0, min_rate=2, max_steps=4),
    baseline_s=4,
    raw=Ladder(start=100, factor=4, resolution=4.0, max_steps=3),
    http=Ladder(start=50, factor=4, resolution=4.0, max_steps=3),
    perf_records=300_000,
)
FULL = Plan(
    runs=3,
    phase_s=20,
    drain_s=30,
    settle_s=180,
    timeout_s=120,
    keeper=Ladder(start=10, factor=2, resolution=1.2, min_rate=2, max_steps=14, retries=1),
    baseline_s=10,
    raw=Ladder(start=25, factor=2, resolution=1.2, max_steps=14, retries=1),
    http=Ladder(start=25, factor=2, resolution=1.2, max_steps=14, retries=1),
    perf_records=1_000_000,
)


# --- Keeper -------------------------------------------------------------------------------

DONE_SQL = text(
    "SELECT count(*) FROM orders o WHERE o.partner_id = :partner "
    "AND o.partner_order_id LIKE :tag AND o.status = 'approved' AND EXISTS ("
    "SELECT 1 FROM ledger_postings p WHERE p.order_uid = o.uid AND p.kind = 'deposit_credit')"
)


def completed(engine: Engine, desk: Desk, tag: str) -> int:
    """Lives of this phase whose row is ``approved`` with its credit posted."""
    with engine.connect() as conn:
        params = {"partner": desk.partner, "tag": f"{tag}-%"}
        return int(conn.execute(DONE_SQL, params).scalar_one())


def balance_check(engine: Engine, partner: str) -> bool:
    """The partner's available balance equals its approved deposits less their fees."""
    with engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT coalesce(sum(amount_minor - fee_minor), 0) FROM orders "
                "WHERE partner_id = :p AND status = 'approved'"
            ),
            {"p": partner},
        ).scalar_one()
        actual = conn.execute(
            text("SELECT available_minor FROM balance_snapshots WHERE partner_id = :p"),
            {"p": partner},
        ).scalar_one_or_none()
    return bool(actual == expected)


async def wait_for(engine: Engine, desk: Desk, tag: str, want: int, limit_s: float) -> int:
    """Poll PostgreSQL until ``want`` lives of the phase completed or ``limit_s`` passed, or
    (when fewer were answered than started) the count stopped moving for 5 s."""
    deadline = time.monotonic() + limit_s
    last, since = -1, time.monotonic()
    while True:
        done = await asyncio.to_thread(completed, engine, desk, tag)
        if done >= want or time.monotonic() >= deadline:
            return done
        if done != last:
            last, since = done, time.monotonic()
        elif time.monotonic() - since > 5 and limit_s > 30:
            return done
        await asyncio.sleep(0.5)


async def warm(driver: Driver, engine: Engine, desk: Desk) -> None:
    """One life on the new desk, until it completes: the agents know its cards."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + 60
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        tag = f"{desk.partner}-warm{attempt}"
        lived = await driver.life(desk, tag, 0, loop.time(), LifeStats())
        if lived and await wait_for(engine, desk, tag, 1, 20) >= 1:
            return
        await asyncio.sleep(1)
    raise RuntimeError(f"the new desk {desk.partner} never completed a life")


def phase_summary(
    rate: float, duration_s: float, results: list[bool], stats: LifeStats, lag_ms: float
) -> dict[str, Any]:
    creates = stats.create_ms or [float("inf")]
    lives = stats.life_ms or [float("inf")]
    return {
        "rate": rate,
        "duration_s": duration_s,
        "started": len(results),
        "answered": sum(results),
        "create_p50_ms": round(percentile(creates, 50), 1),
        "create_p99_ms": round(percentile(creates, 99), 1),
        "create_max_ms": round(max(creates), 1),
        "life_p50_ms": round(percentile(lives, 50), 1),
        "life_p99_ms": round(percentile(lives, 99), 1),
        "create_statuses": stats.statuses,
        "retried": stats.retried,
        "client_timeouts": stats.timeouts,
        "generator_worst_start_lag_ms": round(lag_ms, 1),
    }


def per_life(
    before: dict[str, float | None], after: dict[str, float | None], lives: int
) -> dict[str, float]:
    return {
        name: round((end - start) * 1000 / max(lives, 1), 3)
        for name, start in before.items()
        if start is not None and (end := after.get(name)) is not None
    }


async def keeper_phase(
    stack: BenchStack, driver: Driver, plan: Plan, target: P99Target, rate: float
) -> dict[str, Any]:
    desk = await asyncio.to_thread(stack.new_desk)
    engine = create_engine(stack.database_url)
    try:
        await warm(driver, engine, desk)
        tag = f"{desk.partner}-life"
        stats = LifeStats()
        offsets_before = await topic_offsets(stack.bootstrap)
        load_before, cpu_before, started = load(), stack.cpu(), time.monotonic()
        results, lag = await open_loop(
            rate, plan.phase_s, lambda i, due: driver.life(desk, tag, i, due, stats)
        )
        done = await wait_for(engine, desk, tag, sum(results), plan.drain_s)
        elapsed = time.monotonic() - started
        cpu_after, load_after = stack.cpu(), load()
        offsets_after = await topic_offsets(stack.bootstrap)
        phase = phase_summary(rate, plan.phase_s, results, stats, lag)
        outcome = PhaseOutcome(rate, len(results), done, phase["create_p99_ms"])
        held, why = verdict(outcome, target)
        if done < sum(results):  # let the backlog clear before the next phase (not measured)
            await wait_for(engine, desk, tag, sum(results), plan.settle_s)
        produced = {
            t: n - offsets_before.get(t, 0)
            for t, n in offsets_after.items()
            if n > offsets_before.get(t, 0)
        }
        phase.update(
            partner=desk.partner,
            completed=done,
            elapsed_s=round(elapsed, 1),
            held=held,
            why=why,
            overwhelmed=not held and overwhelmed(outcome, target),
            cpu_ms_per_life=per_life(cpu_before, cpu_after, done),
            records_per_life={t: round(n / max(done, 1), 2) for t, n in sorted(produced.items())},
            records_produced=produced,
            balance_ok=await asyncio.to_thread(balance_check, engine, desk.partner),
            load_before=load_before,
            load_after=load_after,
        )
        return phase
    finally:
        engine.dispose()


def say(what: str, phase: dict[str, Any]) -> None:
    verdict_text = "held" if phase["held"] else f"did not hold ({phase['why']})"
    cpu = phase["cpu_ms_per_life"]
    total = round(sum(v for k, v in cpu.items() if k != GENERATOR), 2)
    print(
        f"  {what} {phase['rate']:g}/s: {phase.get('completed')}/{phase['started']} lives, "
        f"create p50 {phase['create_p50_ms']} p99 {phase['create_p99_ms']} ms, "
        f"CPU {total} ms/life: {verdict_text}",
        flush=True,
    )


async def keeper_run(stack: BenchStack, plan: Plan, target: P99Target) -> dict[str, Any]:
    tried: list[tuple[float, bool]] = []
    retry = True
    phases = []
    async with Driver(stack.api_url, OPERATORS, PASSWORD, plan.timeout_s) as driver:
        while (rate := next_rate(plan.keeper, tried, retry)) is not None:
            phase = await keeper_phase(stack, driver, plan, target, rate)
            say("keeper", phase)
            phases.append(phase)
            tried.append((rate, phase["held"]))
            retry = not phase["overwhelmed"]
    return {"capacity": capacity(tried), "saturated": saturated(tried), "phases": phases}


def at_capacity(run: dict[str, Any]) -> dict[str, Any]:
    """The phase whose figures stand for the run: the highest rate that held; when none did,
    the highest rate whose lives all completed (create p99 aside), else the lowest tried."""
    phases: list[dict[str, Any]] = run["phases"]
    held = [p for p in phases if p["held"] and p["rate"] == run["capacity"]]
    if held:
        return held[0]
    whole = [p for p in phases if p["completed"] >= p["started"]]
    if whole:
        return max(whole, key=lambda p: float(p["rate"]))
    return min(phases, key=lambda p: float(p["rate"]))


# --- baselines -------------------------------------------------------------------------------


async def raw_run(
    bootstrap: str, plan: Plan, target: P99Target, sizes: raw_pipeline.RecordSizes, broker: int
) -> dict[str, Any]:
    tried: list[tuple[float, bool]] = []
    retry = True
    phases = []
    while (rate := next_rate(plan.raw, tried, retry)) is not None:
        load_before = load()
        phase = await raw_pipeline.phase(
            bootstrap, rate, plan.baseline_s, sizes, timeout_s=RAW_TIMEOUT_S, broker_pid=broker
        )
        outcome = PhaseOutcome(rate, phase["started"], phase["completed"], phase["create_p99_ms"])
        phase["held"], phase["why"] = verdict(outcome, target)
        phase["overwhelmed"] = not phase["held"] and overwhelmed(outcome, target)
        phase["load_before"] = load_before
        say("raw", phase)
        phases.append(phase)
        tried.append((rate, phase["held"]))
        retry = not phase["overwhelmed"]
    return {"capacity": capacity(tried), "saturated": saturated(tried), "phases": phases}


async def http_run(plan: Plan, target: P99Target) -> dict[str, Any]:
    tried: list[tuple[float, bool]] = []
    retry = True
    phases = []
    desk = Desk("null", "null-key", b"null-secret")
    with null_api() as (url, pid):
        await until_up(url)
        async with Driver(url, OPERATORS[:1], PASSWORD, plan.timeout_s) as driver:
            while (rate := next_rate(plan.http, tried, retry)) is not None:
                stats = LifeStats()

                def job(i: int, due: float, stats: LifeStats = stats) -> Coroutine[Any, Any, bool]:
                    return driver.life(desk, "n", i, due, stats)

                processes = {"api": pid, GENERATOR: os.getpid()}
                before = {n: cpu_seconds(p) for n, p in processes.items()}
                load_before = load()
                results, lag = await open_loop(rate, plan.baseline_s, job)
                after = {n: cpu_seconds(p) for n, p in processes.items()}
                phase = phase_summary(rate, plan.baseline_s, results, stats, lag)
                done = sum(results)
                outcome = PhaseOutcome(rate, len(results), done, phase["create_p99_ms"])
                held, why = verdict(outcome, target)
                phase.update(
                    completed=done,
                    held=held,
                    why=why,
                    overwhelmed=not held and overwhelmed(outcome, target),
                    cpu_ms_per_life=per_life(before, after, done),
                    load_before=load_before,
                )
                say("http", phase)
                phases.append(phase)
                tried.append((rate, held))
                retry = not phase["overwhelmed"]
    return {"capacity": capacity(tried), "saturated": saturated(tried), "phases": phases}


async def until_up(url: str, limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.post(f"{url}/v1/auth/login", json={}) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


def raw_sizes(per_topic: dict[str, int], counts: dict[str, int]) -> raw_pipeline.RecordSizes:
    """Keeper's own sizes for the raw pipeline's three kinds of record: its command and
    event topics, and the mean changelog record (whatever the agents call their changelogs),
    each changelog weighted by the records it got (``counts``)."""
    default = raw_pipeline.RecordSizes()
    changelogs = {t: n for t, n in counts.items() if t.endswith("-changelog") and t in per_topic}
    written = sum(changelogs.values())
    return raw_pipeline.RecordSizes(
        command=per_topic.get(ORDER_COMMANDS.name, default.command),
        event=per_topic.get(ORDER_EVENTS.name, default.event),
        changelog=round(sum(per_topic[t] * n for t, n in changelogs.items()) / written)
        if written
        else default.changelog,
    )


# --- the run -------------------------------------------------------------------------------


async def run(stack: BenchStack, plan: Plan, target: P99Target) -> dict[str, Any]:
    out: dict[str, Any] = {"keeper": [], "raw": [], "http": [], "perf": []}
    for n in range(plan.runs):
        print(f"Keeper, run {n + 1} of {plan.runs}", flush=True)
        out["keeper"].append(await keeper_run(stack, plan, target))
    # Sizes from the newest records of each topic: the last phase's, on fresh cards.
    first = at_capacity(out["keeper"][0])
    per_topic: dict[str, int] = {}
    mean = await record_sizes(stack.bootstrap, first["records_produced"], per_topic)
    out["record_bytes"] = {"mean": round(mean), "per_topic": per_topic}
    out["peak_rss_mib"] = {name: peak_rss_mib(pid) for name, pid in stack.pids().items()}
    sizes = raw_sizes(per_topic, first["records_produced"])
    out["raw_sizes"] = asdict(sizes)
    broker = stack.pids().get(BROKER, 0)
    stack.stop_keeper()
    await asyncio.sleep(2)
    for n in range(plan.runs):
        print(f"baseline (b) raw aiokafka pipeline, run {n + 1}: {sizes}", flush=True)
        out["raw"].append(await raw_run(stack.bootstrap, plan, target, sizes, broker))
        print(f"baseline (c) HTTP only, run {n + 1}", flush=True)
        out["http"].append(await http_run(plan, target))
        print(f"baseline (a) ProducerPerformance, run {n + 1}", flush=True)
        perf = await asyncio.to_thread(
            producer_perf.measure,
            stack.bootstrap,
            size=max(1, round(mean)),
            records=plan.perf_records,
        )
        print(f"  {perf['records_per_s']:g} records/s, {perf['mb_per_s']:g} MB/s", flush=True)
        out["perf"].append(perf)
    out["summary"] = summarise(out)
    return out


def summarise(out: dict[str, Any]) -> dict[str, Any]:
    keeper = spread([r["capacity"] for r in out["keeper"]])
    raw = spread([r["capacity"] for r in out["raw"]])
    http = spread([r["capacity"] for r in out["http"]])
    phases = [at_capacity(r) for r in out["keeper"]]
    baseline_cpu = {
        kind: spread(
            [
                sum(v for k, v in at_capacity(r)["cpu_ms_per_life"].items() if k != GENERATOR)
                for r in out[kind]
            ]
        )
        for kind in ("raw", "http")
    }
    processes = sorted({name for p in phases for name in p["cpu_ms_per_life"]})
    cpu = {
        name: spread([p["cpu_ms_per_life"][name] for p in phases if name in p["cpu_ms_per_life"]])
        for name in processes
    }
    total = spread(
        [sum(v for k, v in p["cpu_ms_per_life"].items() if k != GENERATOR) for p in phases]
    )
    records = spread([sum(p["records_per_life"].values()) for p in phases])
    perf = spread([p["records_per_s"] for p in out["perf"]])
    worst = max(
        p["create_max_ms"]
        for kind in ("keeper", "http")  # through HTTP, under the client timeout
        for r in out[kind]
        for p in r["phases"]
    )
    return {
        "worst_create_ms": worst,
        "representative_rates": [p["rate"] for p in phases],
        "saturated": {k: all(r["saturated"] for r in out[k]) for k in ("keeper", "raw", "http")},
        "keeper": asdict(keeper),
        "raw": asdict(raw),
        "http": asdict(http),
        "ratio_to_raw": round(keeper.median / raw.median, 3) if raw.median else None,
        "ratio_to_http": round(keeper.median / http.median, 3) if http.median else None,
        "cpu_ms_per_life": {name: asdict(s) for name, s in cpu.items()},
        "cpu_ms_per_life_total": asdict(total),
        "raw_cpu_ms_per_life_total": asdict(baseline_cpu["raw"]),
        "http_cpu_ms_per_life_total": asdict(baseline_cpu["http"]),
        "records_per_life": asdict(records),
        "perf_records_per_s": asdict(perf),
        "perf_lives_per_s_equivalent": round(perf.median / records.median, 1)
        if records.median
        else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short plan (a smoke test)")
    parser.add_argument("--runs", type=int, help="repeat the searches (default: 3, quick 1)")
    parser.add_argument(
        "--p99",
        default=DEFAULT_TARGET,
        help="create p99 limit in ms, one number or by rate ('200:50,500:150,250', the default)",
    )
    parser.add_argument("--start-rate", type=float, help="Keeper's first offered rate")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--label", default="", help="a word for this run (e.g. the change)")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set this in Keeper's processes' environment (an A/B of a setting); repeatable",
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="run nothing: write the doc section from this results file (summary recomputed)",
    )
    args = parser.parse_args()
    if args.render:
        result = json.loads(Path(args.render).read_text())
        result["summary"] = summarise(result)
        replace_section(REPO_ROOT / "docs" / "benchmarks.md", MARKER, render(result), TITLE)
        print(render_summary(result))
        return 0
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = replace(plan, runs=args.runs)
    if args.start_rate:
        plan = replace(plan, keeper=replace(plan.keeper, start=args.start_rate))
    target = parse_target(args.p99)
    stack = BenchStack()
    for setting in args.env:
        name, _, value = setting.partition("=")
        stack.env[name] = value
    # A TERM (a time limit, a supervisor) must still tear the private stack down.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = datetime.now(UTC)
    t0 = time.monotonic()
    load_start, commit = load(), git_commit()  # what was measured: the tree at the start
    try:
        print(f"starting a private stack in {stack.root}", flush=True)
        stack.up()
        print(f"stack up in {time.monotonic() - t0:.0f} s", flush=True)
        versions = stack.versions()
        result = asyncio.run(run(stack, plan, target))
    finally:
        if not args.keep:
            stack.down()
    command = ".venv/bin/python -m bench.pipeline" + (" --quick" if args.quick else "")
    if args.runs:
        command += f" --runs {args.runs}"
    if args.p99 != DEFAULT_TARGET:
        command += f" --p99 {args.p99}"
    if args.start_rate:
        command += f" --start-rate {args.start_rate:g}"
    command += "".join(f" --env {setting}" for setting in args.env)
    result.update(
        label=args.label,
        mode="quick" if args.quick else "full",
        target=target.describe(),
        recorded=started.strftime("%Y-%m-%d %H:%M UTC"),
        wall_s=round(time.monotonic() - t0, 1),
        load_start=load_start,
        load_end=load(),
        machine=machine(),
        nproc=os.cpu_count(),
        command=command,
        commit=commit,
        plan=asdict(plan),
        versions=versions,
        run_id=uuid.uuid4().hex[:8],
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = json.dumps(result, indent=2)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}{'-' + args.label if args.label else ''}.json").write_text(body)
    (RESULTS / "latest.json").write_text(body)
    if args.json:
        Path(args.json).write_text(body)
    if not args.no_doc:
        replace_section(REPO_ROOT / "docs" / "benchmarks.md", MARKER, render(result), TITLE)
    print(render_summary(result))
    print(f"done in {result['wall_s']} s")
    return 0


def git_commit() -> str:
    """The commit measured (with ``+`` when the work tree had changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - informational
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + ("+" if dirty else "")


def render_summary(r: dict[str, Any]) -> str:
    s = r["summary"]
    return (
        f"capacity (lives/s): Keeper {shown(s['keeper'])}, raw (b) {shown(s['raw'])}, "
        f"HTTP (c) {shown(s['http'])}; ratio to (b) {s['ratio_to_raw']}, to (c) "
        f"{s['ratio_to_http']}; CPU ms per life {shown(s['cpu_ms_per_life_total'])}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
