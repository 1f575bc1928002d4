"""Baseline (b): the new design's topology in raw aiokafka, with no domain logic, no state and
no database, at the same offered rates as Keeper (issue 13, part 5).

Three processes, as Keeper's would be:

- **api** (with the open-loop generator inside it): per life, three commands (open, confirm,
  decide), each produced keyed by the desk to a 4-partition commands topic and awaited the
  way the API awaits an answer: by reading the events topic until the command's event
  arrives. Open-loop: life *i* is due at *t0 + i / rate*, and create latency runs from that
  due time to the open's event.
- **desk**: consumes commands in batches (``getmany``) and produces, per command, one event
  to a 4-partition events topic keyed by uid plus one record to a compacted changelog
  topic; sends are pipelined (awaited once per batch), then the offsets are committed.
- **projector**: reads the events and counts the lives whose decide event arrived (the
  stand-in for the row ``approved`` in PostgreSQL).

Every producer: ``acks=all``, idempotent, a linger of a few ms. Record sizes are Keeper's,
sampled from its topics in the same run. Topics are new per phase (fresh state).

    .venv/bin/python -m bench.raw_pipeline --bootstrap 127.0.0.1:9092 --rate 200 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import queue
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from bench.capacity import percentile
from bench.lives import open_loop
from bench.proc import cpu_seconds

PARTITIONS = 4
STEPS = (b"open", b"confirm", b"decide")
LINGER_MS = 5
BATCH = 500
#: Lives each phase runs, unmeasured, before the clock starts.
WARM_UP_LIVES = 20
WARM_UP = b"warm-"


@dataclass(frozen=True, slots=True)
class RecordSizes:
    """Bytes (key + value) of one command, one event and one changelog record."""

    command: int = 400
    event: int = 760
    changelog: int = 650


@dataclass(frozen=True, slots=True)
class Topics:
    commands: str
    events: str
    changelog: str

    @classmethod
    def fresh(cls) -> Topics:
        prefix = f"raw-{uuid.uuid4().hex[:8]}"
        return cls(f"{prefix}-commands", f"{prefix}-events", f"{prefix}-changelog")

    def all(self) -> list[str]:
        return [self.commands, self.events, self.changelog]


def producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=LINGER_MS
    )


def padded(head: bytes, size: int) -> bytes:
    """``head`` then a separator and filler up to ``size`` bytes (never shorter than head)."""
    return head + b"|" + b"x" * max(0, size - len(head) - 1)


async def create_topics(bootstrap: str, topics: Topics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(topics.commands, PARTITIONS, 1),
                NewTopic(topics.events, PARTITIONS, 1),
                NewTopic(
                    topics.changelog, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"}
                ),
            ]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every partition has a leader before we produce
            described = await admin.describe_topics(topics.all())
            if all(
                not t.get("error_code") and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, topics: Topics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(topics.all())
    except Exception:  # noqa: S110 - best-effort clean-up of a private broker
        pass
    finally:
        await admin.close()


def assigned(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    """A consumer of every partition of ``topic``, committing for ``group`` (assigned, not
    subscribed: no rebalance to wait for; one process reads them all, as one desk does)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=BATCH,
    )
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    return consumer


# --- desk ------------------------------------------------------------------------------------


async def _desk(bootstrap: str, topics: Topics, sizes: RecordSizes, ready: Any, stop: Any) -> None:
    consumer = assigned(bootstrap, topics.commands, f"{topics.commands}-desk")
    out = producer(bootstrap)
    await consumer.start()
    await out.start()
    ready.set()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=BATCH)
            if not batches:
                continue
            pending = []
            for records in batches.values():
                for record in records:
                    uid, step = bytes(record.value or b"").split(b"|", 2)[:2]
                    event = padded(uid + b"|" + step, sizes.event - len(uid))
                    pending.append(await out.send(topics.events, key=uid, value=event))
                    state = padded(step, sizes.changelog - len(uid))
                    pending.append(await out.send(topics.changelog, key=uid, value=state))
            await asyncio.gather(*pending)
            await consumer.commit()
    finally:
        await consumer.stop()
        await out.stop()


def desk_process(bootstrap: str, topics: Topics, sizes: RecordSizes, ready: Any, stop: Any) -> None:
    asyncio.run(_desk(bootstrap, topics, sizes, ready, stop))


# --- projector stand-in -------------------------------------------------------------------


async def _projector(bootstrap: str, topics: Topics, done: Any, ready: Any, stop: Any) -> None:
    consumer = assigned(bootstrap, topics.events, f"{topics.events}-projector")
    await consumer.start()
    ready.set()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=BATCH)
            decided = sum(
                1
                for records in batches.values()
                for r in records
                if bytes(r.value or b"").split(b"|", 2)[1] == STEPS[-1]
                and not r.value.startswith(WARM_UP)
            )
            if batches:
                await consumer.commit()
            with done.get_lock():
                done.value += decided
    finally:
        await consumer.stop()


def projector_process(bootstrap: str, topics: Topics, done: Any, ready: Any, stop: Any) -> None:
    asyncio.run(_projector(bootstrap, topics, done, ready, stop))


# --- api stand-in with the open-loop generator ----------------------------------------------


async def _api(
    bootstrap: str,
    topics: Topics,
    sizes: RecordSizes,
    rate: float,
    duration_s: float,
    timeout_s: float,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    send = producer(bootstrap)
    events = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    events.assign([TopicPartition(topics.events, p) for p in range(PARTITIONS)])
    await send.start()
    await events.start()
    await events.seek_to_end()
    waiting: dict[bytes, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def read_events() -> None:
        while not stop.is_set():
            batches = await events.getmany(timeout_ms=50, max_records=BATCH)
            for records in batches.values():
                for record in records:
                    uid, step = bytes(record.value or b"").split(b"|", 2)[:2]
                    future = waiting.pop(uid + b"|" + step, None)
                    if future is not None and not future.done():
                        future.set_result(None)

    reader = asyncio.create_task(read_events())
    desk = b"pool:raw"
    command_size = sizes.command - len(desk)

    async def life(i: int, due: float) -> tuple[float | None, bool]:
        # Warm-up lives (i < 0) are marked so that the projector does not count them.
        uid = (WARM_UP if i < 0 else b"") + uuid.uuid4().hex.encode()
        create_ms = None
        for step in STEPS:
            answered: asyncio.Future[None] = loop.create_future()
            waiting[uid + b"|" + step] = answered
            try:
                # Past capacity the producer's buffer fills and a send times out: the life
                # failed, as a request the API could not take.
                await send.send(
                    topics.commands, key=desk, value=padded(uid + b"|" + step, command_size)
                )
                await asyncio.wait_for(answered, timeout_s)
            except (KafkaError, TimeoutError):
                waiting.pop(uid + b"|" + step, None)
                return create_ms, False
            if step == STEPS[0]:
                create_ms = (loop.time() - due) * 1000
        return create_ms, True

    for i in range(WARM_UP_LIVES):  # metadata, connections, the desk's first fetches
        await life(-1 - i, loop.time())
    ready.set()
    await asyncio.to_thread(go.wait)
    results, worst_lag_ms = await open_loop(rate, duration_s, life)
    count = len(results)
    stop.set()
    await reader
    await send.stop()
    await events.stop()
    creates = [ms for ms, _ in results if ms is not None]
    out.put(
        {
            "started": count,
            "answered": sum(1 for _, ok in results if ok),
            "create_ms": creates,
            "worst_start_lag_ms": round(worst_lag_ms, 1),
        }
    )


def api_process(*args: Any) -> None:
    asyncio.run(_api(*args))


# --- one phase ------------------------------------------------------------------------------


async def outcome(results: Any, api: Any, limit_s: float) -> dict[str, Any]:
    """The API stand-in's report, polled so that its death (or a TERM to the harness) does
    not leave the harness waiting out the whole limit."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            found: dict[str, Any] = await asyncio.to_thread(results.get, True, 1.0)
            return found
        except queue.Empty:
            if not api.is_alive() and results.empty():
                break
    return {"started": 0, "answered": 0, "create_ms": [], "worst_start_lag_ms": 0.0}


async def phase(
    bootstrap: str,
    rate: float,
    duration_s: float,
    sizes: RecordSizes,
    *,
    timeout_s: float = 60,
    drain_s: float = 30,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """Offer ``rate`` lives/s for ``duration_s`` on fresh topics; what came of it."""
    topics = Topics.fresh()
    await create_topics(bootstrap, topics)
    ctx = multiprocessing.get_context("spawn")
    stop, go = ctx.Event(), ctx.Event()
    readies = [ctx.Event() for _ in range(3)]
    done = ctx.Value("q", 0)
    results = ctx.Queue()
    procs = {
        "desk": ctx.Process(target=desk_process, args=(bootstrap, topics, sizes, readies[0], stop)),
        "projector": ctx.Process(
            target=projector_process, args=(bootstrap, topics, done, readies[1], stop)
        ),
        "api": ctx.Process(
            target=api_process,
            args=(bootstrap, topics, sizes, rate, duration_s, timeout_s, readies[2], go, results),
        ),
    }
    try:
        for proc in procs.values():
            proc.start()
        for ready in readies:
            await asyncio.to_thread(ready.wait, 60)
        pids = {name: proc.pid for name, proc in procs.items() if proc.pid is not None}
        if broker_pid:
            pids["kafka broker"] = broker_pid
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        go.set()
        answer = await outcome(results, procs["api"], duration_s + timeout_s * 3 + 60)
        deadline = time.monotonic() + drain_s
        while done.value < answer["answered"] and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        completed = int(done.value)
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    finally:
        stop.set()
        for proc in procs.values():
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
        await delete_topics(bootstrap, topics)
    creates = answer["create_ms"] or [float("inf")]
    cpu_ms = {
        name: round((after - before) * 1000 / max(completed, 1), 3)
        for name, before in cpu_before.items()
        if before is not None and (after := cpu_after.get(name)) is not None
    }
    return {
        "rate": rate,
        "duration_s": duration_s,
        "started": answer["started"],
        "answered": answer["answered"],
        "completed": completed,
        "create_p50_ms": round(percentile(creates, 50), 1),
        "create_p99_ms": round(percentile(creates, 99), 1),
        "create_max_ms": round(max(creates), 1),
        "generator_worst_start_lag_ms": answer["worst_start_lag_ms"],
        "elapsed_s": round(elapsed, 1),
        "records_per_life": 3 * len(STEPS),
        "cpu_ms_per_life": cpu_ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(phase(args.bootstrap, args.rate, args.seconds, RecordSizes()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
