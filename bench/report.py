"""The "Pipeline" section of ``docs/benchmarks.md``, written from one run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR = "load generator"


def shown(s: dict[str, Any] | None) -> str:
    """A spread as ``median (min to max, n runs)``; one run as its value."""
    if not s:
        return "-"
    if s["runs"] == 1:
        return f"{s['median']:g}"
    return f"{s['median']:g} ({s['low']:g} to {s['high']:g}, {s['runs']} runs)"


def capacity_cell(s: dict[str, Any], kind: str) -> str:
    """The capacity spread; ``≥`` when some run never found a rate that failed."""
    return ("" if s["saturated"][kind] else "≥ ") + shown(s[kind])


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def phase_rows(runs: list[dict[str, Any]], keeper: bool) -> str:
    rows = []
    for n, run in enumerate(runs, 1):
        for p in run["phases"]:
            cpu = p["cpu_ms_per_life"]
            total = round(sum(v for k, v in cpu.items() if k != GENERATOR), 2)
            held = "yes" if p["held"] else f"no: {p['why']}"
            extra = (
                f" {round(sum(p['records_per_life'].values()), 1)} | "
                f"{'ok' if p['balance_ok'] else '**wrong**'} |"
                if keeper
                else ""
            )
            load = "/".join(str(x) for x in p.get("load_before", []))
            rows.append(
                f"| {n} | {p['rate']:g} | {p['completed']}/{p['started']} | "
                f"{p['create_p50_ms']} | {p['create_p99_ms']} | {p['create_max_ms']} | "
                f"{p.get('life_p99_ms', '-')} | {total} | {held} |{extra} {load} |"
            )
    return "\n".join(rows)


BASELINE_COLUMNS = (
    "run",
    "rate/s",
    "lives done",
    "create p50 ms",
    "create p99 ms",
    "create max ms",
    "life p99 ms",
    "CPU ms/life",
    "held",
    "load",
)
KEEPER_COLUMNS = (*BASELINE_COLUMNS[:-1], "records/life", "balance", "load")


def header(columns: tuple[str, ...]) -> str:
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"


def targets(s: dict[str, Any]) -> str:
    cpu = s["cpu_ms_per_life_total"]
    records = s["records_per_life"]
    ratio = s["ratio_to_raw"] or 0
    rows = [
        ("sustained full lives/s ≥ 300", shown(s["keeper"]), s["keeper"]["median"] >= 300),
        ("CPU per full life, all processes, ≤ 6 ms", shown(cpu), cpu["median"] <= 6),
        ("records per life ≤ 10", shown(records), records["median"] <= 10),
        ("ratio to baseline (b) ≥ 0.5", str(s["ratio_to_raw"]), ratio >= 0.5),
    ]
    return "\n".join(f"| {what} | {got} | {verdict(ok)} |" for what, got, ok in rows)


def cpu_table(summary: dict[str, Any]) -> str:
    rows = [f"| {name} | {shown(s)} |" for name, s in summary["cpu_ms_per_life"].items()]
    rows.append(
        f"| **all but the load generator** | **{shown(summary['cpu_ms_per_life_total'])}** |"
    )
    return "\n".join(rows)


def baseline_cpu(runs: list[dict[str, Any]]) -> str:
    """CPU-ms per life of the baseline's processes at its highest rate that held."""
    parts = []
    for run in runs:
        held = [p for p in run["phases"] if p["held"] and p["rate"] == run["capacity"]]
        if held:
            cpu = held[0]["cpu_ms_per_life"]
            parts.append(
                f"{held[0]['rate']:g}/s: " + ", ".join(f"{k} {v:g}" for k, v in cpu.items())
            )
    return "; ".join(parts) or "-"


def render(r: dict[str, Any]) -> str:
    s = r["summary"]
    plan, v = r["plan"], r["versions"]
    sizes = r["raw_sizes"]
    perf = r["perf"]
    records = s["records_per_life"]["median"]
    first = r["keeper"][0]
    topics: dict[str, float] = {}
    for p in first["phases"]:
        if p["rate"] == first["capacity"] or not topics:
            topics = p["records_per_life"]
    by_topic = ", ".join(f"`{t}` {n:g}" for t, n in topics.items())
    sized = ", ".join(f"`{t}` {b} B" for t, b in sorted(r["record_bytes"]["per_topic"].items()))
    perf_rows = "\n".join(
        f"| {n} | {p['record_bytes']} | {p['records']} | {p['records_per_s']:g} | "
        f"{p['mb_per_s']:g} | {p['avg_latency_ms']:g} | {p['p99_latency_ms']} |"
        for n, p in enumerate(perf, 1)
    )
    ratio_b, ratio_c = s["ratio_to_raw"], s["ratio_to_http"]
    cap_b, cap_c = capacity_cell(s, "raw"), capacity_cell(s, "http")
    cpu_b, cpu_c = shown(s["raw_cpu_ms_per_life_total"]), shown(s["http_cpu_ms_per_life_total"])
    perf_cell = (
        f"{shown(s['perf_records_per_s'])} records/s = {s['perf_lives_per_s_equivalent']} "
        f"lives/s at Keeper's {records:g} records per life"
    )
    rss = "\n".join(f"| {name} | {mib} |" for name, mib in r["peak_rss_mib"].items())
    retries = plan["keeper"].get("retries", 0)
    quick = (
        " This is the quick plan, a smoke test: one run, short phases, coarse steps; "
        "`make bench` is the measurement."
        if r["mode"] == "quick"
        else ""
    )
    return f"""## Pipeline: capacity, CPU per life, and three baselines

`bench/pipeline.py` (issue 13, part 5). A private stack (own broker and PostgreSQL on free
ports), Keeper's processes under `infra/keeper.sh` as `make run` starts them (console and
reconciler left out), driven through the signed HTTP API by an open-loop generator on the
same two cores: life *i* is due at *t0 + i/rate* whatever the earlier ones are doing, and
latencies run from that due time, so a stall is charged to every life queued behind it.
A life is create → "I have paid" → operator approves → the row `approved` with its
`deposit_credit` posting in PostgreSQL. The rate doubles while a phase holds, then is
bisected between the highest rate that held and the lowest that did not; a phase that fails
is run {retries} more time(s) on fresh state and its rate holds if an attempt held (one
stall of other work on a shared machine is not the system's capacity), unless it failed far
past capacity (under 90 % of its lives completed, or create p99 over 4 times its limit).
A phase **holds**
when every life it started reached PostgreSQL within {plan["drain_s"]:g} s of the last
request and create's p99 stayed within the target ({r["target"]}). Each phase gets a
partner, pool and eight cards of its own, so no phase inherits another's open orders.
Phases of {plan["phase_s"]:g} s (baselines {plan["baseline_s"]:g} s), {plan["runs"]} run(s)
of the whole search; client timeout {plan["timeout_s"]:g} s, above every latency shown
(a request that timed out counts in the "timeouts" of the raw results).{quick}

### Capacity: highest sustained full-life rate (lives/s)

| system | capacity | Keeper's ratio to it | CPU-ms per life |
|---|---|---|---|
| **Keeper** | **{capacity_cell(s, "keeper")}** | | {shown(s["cpu_ms_per_life_total"])} |
| (b) raw aiokafka, the new design's topology | {cap_b} | **{ratio_b}** | {cpu_b} |
| (c) HTTP only: a FastAPI app that does no work | {cap_c} | **{ratio_c}** | {cpu_c} |
| (a) Kafka's ProducerPerformance, `acks=all` | {perf_cell} | | |

CPU-ms per life: every process at the run's capacity phase (below), the load generator left
out except in (b), whose API stand-in runs the generator in the same process.
Capacity is the median over runs (min to max in brackets); 0 means no rate tried held, and
"≥" that the search stopped (its step budget) before a rate failed, so the ratio is a
bound. The worst create latency of any phase through HTTP (Keeper's and (c)'s) was
{s["worst_create_ms"]:g} ms, under the client timeout of {plan["timeout_s"]:g} s.

### CPU-ms per life, by process (the primary figure)

CPU time (user + system, from `/proc`) each process spent per completed life, over the
phase at each run's capacity (when no rate held: the highest rate whose lives all
completed), here at {", ".join(f"{x:g}" for x in s["representative_rates"])} lives/s;
idle polling is charged to the lives too, so compare at similar rates. Unlike rates and
latencies, it hardly depends on how busy the shared machine is, so changes are compared
by it. PostgreSQL counts every backend.

| process | CPU-ms per life |
|---|---|
{cpu_table(s)}

Records per life: {shown(s["records_per_life"])} (every topic, changelogs included;
{by_topic}).

Baselines' CPU-ms per life at their capacity: (b) {baseline_cpu(r["raw"])}; (c)
{baseline_cpu(r["http"])}.

### Keeper's phases

{header(KEEPER_COLUMNS)}
{phase_rows(r["keeper"], keeper=True)}

### Baseline (b): raw aiokafka with the new design's topology

Per life three commands (open, confirm, decide), produced keyed by the desk to a
4-partition commands topic and each awaited by reading the events topic, as the API learns
outcomes; one desk process consumes the commands in batches (`getmany`) and produces per
command one event (4 partitions, keyed by uid) and one changelog record (compacted),
pipelined, linger 5 ms, `acks=all`, idempotent; one more consumer stands in for the
projector and counts the decide events (a life is complete when it sees its decide).
{3 * 3} records per life of Keeper's sizes, sampled from its topics in this run:
command {sizes["command"]} B, event {sizes["event"]} B, changelog {sizes["changelog"]} B.
Same broker, Keeper's processes stopped, fresh topics per phase; the API stand-in gives a
command up after 30 s (a failed life).

{header(BASELINE_COLUMNS)}
{phase_rows(r["raw"], keeper=False)}

### Baseline (c): HTTP only

The same generator and requests (create signed with `ingest_api.signing.signed_headers`,
confirm, decision with the operator's bearer token) answered with fixed bodies by
`bench/null_api.py` under uvicorn (no access log). CPU ms/life counts the app and the
generator.

{header(BASELINE_COLUMNS)}
{phase_rows(r["http"], keeper=False)}

### Baseline (a): Kafka's producer benchmark

`org.apache.kafka.tools.ProducerPerformance` from the broker's own jars, `acks=all`,
idempotent, linger 5 ms, 4 partitions, full speed (`--throughput -1`), records of Keeper's
mean size ({r["record_bytes"]["mean"]} B over its topics, weighted by count: {sized}).

| run | record B | records | records/s | MB/s | avg latency ms | p99 latency ms |
|---|---|---|---|---|---|---|
{perf_rows}

### Peak RSS (VmHWM, MiB) after Keeper's runs

| process | MiB |
|---|---|
{rss}

### Targets (issue 13, 2-core machine)

| target | measured | |
|---|---|---|
{targets(s)}

- machine: {r["machine"]} (nproc {r["nproc"]}); shared with other work, load average
  {"/".join(str(x) for x in r["load_start"])} at the start and
  {"/".join(str(x) for x in r["load_end"])} at the end (the "load" columns: before each phase)
- software: Python {v["python"]}, Kafka {v["kafka"]} (single KRaft node), PostgreSQL
  {v["postgresql"]}, faust-streaming {v["faust-streaming"]}, aiokafka {v["aiokafka"]},
  FastAPI {v["fastapi"]}, uvicorn {v["uvicorn"]}
- command: `{r["command"]}` (`make bench{"-quick" if r["mode"] == "quick" else ""}`) on
  commit `{r["commit"]}`; raw figures in `bench/results/`
- recorded: {r["recorded"]} ({r["wall_s"]:g} s wall)
{changes()}"""


def changes() -> str:
    """The profiling notes and before/after log kept by hand in ``bench/pipeline_changes.md``
    (measured with the earlier harness), shown under every run's figures."""
    path = REPO_ROOT / "bench" / "pipeline_changes.md"
    return "\n" + path.read_text().strip() + "\n" if path.exists() else ""
