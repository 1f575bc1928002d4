"""``make soak``: the desk's state stays bounded as completed orders grow (issue 18, ADR 0008).

Drives deposit lives (open, confirm, approve) through the desk workers, **feeding the
commands straight into ``order-commands``** (no HTTP, no API, no PostgreSQL: the desk's state
is what is measured), with at most ``--open`` lives in flight at any time. The workers are real
``python -m stream_agents worker`` processes on the shared broker, under a topic prefix and app
id of their own, with a short retention (``--retention-s``) so that the run sees many retention
periods; the desk's changelog is created beforehand with configs that let compaction run
promptly (small segments, a low dirty ratio, tombstones kept one second).

At each checkpoint of completed lives it reports, per worker: RSS and desk table entries (the
worker's own log line, every retention sweep); the changelog's bytes on the broker's disk once
compaction had its chance; and how long a worker killed with SIGKILL (and replaced at once)
leaves its partitions unserved: from the kill until a probe life sent to every desk is served.
At the end it checks the Kafka-side invariants of ``make reconcile`` on what the run wrote:
balances against the ledger's postings, the order log against the table, one order per request.

    python -m bench.soak --checkpoints 100000,500000,1000000   # make soak
    python -m bench.soak --checkpoints 5000,10000,20000          # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupCoordinatorNotAvailableError

from domain.cards import CardStatus
from domain.orders import Direction
from schemas import cards as wc
from schemas import orders as w
from schemas.desks import pool_desk
from schemas.registry import encode
from schemas.topics import CONFIG_CARDS, ORDER_COMMANDS, ORDER_EVENTS
from stream_agents.app import prepare
from stream_agents.reconcile.kafka import log_matches_table, one_order_per_request
from stream_agents.reconcile.kafka_state import changelog_topic, read_kafka_state
from stream_agents.settings import AgentSettings
from stream_agents.table_keys import DESK_TABLE

ROOT = Path(__file__).resolve().parent.parent
TABLE_LINE = re.compile(rb"desk: (\d+) table entries, (\d+) finished orders retained")
APPROVED = b'"order.approved"'
CREATED = b'"order.created"'
DECLINED = b'"order.declined"'


@dataclass
class Worker:
    index: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream_agents", "worker", "-l", "info"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def dump_stacks(self) -> None:
        """Ask a live worker to print every thread's and task's stack into its log (mode's
        worker does on SIGUSR1): what a stalled worker was waiting for."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGUSR1)

    def rss_mib(self) -> float | None:
        assert self.process is not None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"^VmRSS:\s*(\d+) kB", status, re.MULTILINE)
        return round(int(found.group(1)) / 1024, 1) if found else None

    def restore_s(self) -> float | None:
        """Faust's last recovery in the log: from reading the changelogs to "Worker ready"."""
        text = self.log_path.read_bytes()[-400_000:].decode(errors="replace")
        stamp = r'"ts": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z"'  # JSON lines (ADR 0009)
        starts = re.findall(stamp + r".*Restoring state from changelog topics", text)
        readies = re.findall(stamp + r".*Worker ready", text)
        if not starts or not readies:
            return None
        start, ready = (
            datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%f") for t in (starts[-1], readies[-1])
        )
        return round((ready - start).total_seconds(), 2)

    def readies(self) -> int:
        """How many times the worker's log said "Worker ready" (one per start)."""
        return self.log_path.read_bytes().count(b"Worker ready") if self.log_path.exists() else 0

    def table_entries(self) -> int | None:
        """The last table size the worker logged (one line per retention sweep)."""
        found = TABLE_LINE.findall(self.log_path.read_bytes()[-200_000:])
        return int(found[-1][0]) if found else None

    def retained(self) -> int | None:
        """The finished orders the worker last logged as still within retention."""
        found = TABLE_LINE.findall(self.log_path.read_bytes()[-200_000:])
        return int(found[-1][1]) if found else None


@dataclass
class Soak:
    args: argparse.Namespace
    prefix: str
    app_id: str
    workers: list[Worker] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)
    sent: int = 0
    #: The lives approved and declined, by uid (a record the desk re-publishes after a
    #: rebalance, with the same message id, is the same life and counts once).
    approved: set[bytes] = field(default_factory=set)
    #: Declined at their opening: the first lives race the cards' configuration at start.
    rejected_at_open: set[bytes] = field(default_factory=set)
    answers: set[bytes] = field(default_factory=set)  # order.created or .declined of probes
    probes: dict[str, float] = field(default_factory=dict)

    @property
    def settings(self) -> AgentSettings:
        return AgentSettings(
            kafka_bootstrap_servers=self.args.bootstrap,
            app_id=self.app_id,
            topic_prefix=self.prefix,
        )

    def env(self, index: int) -> dict[str, str]:
        agents = {
            "KAFKA_BOOTSTRAP_SERVERS": self.args.bootstrap,
            "APP_ID": self.app_id,
            "TOPIC_PREFIX": self.prefix,
            "STORE": self.args.store,
            "TABLE_STANDBY_REPLICAS": str(self.args.standby),
            "DATADIR": str(self.args.workdir / f"worker-{index}"),
            "WEB_ENABLED": "false",
            "WEB_PORT": str(20000 + int(self.app_id[-8:], 16) % 20000 + index),  # per run
            "ORDER_RETENTION_H": str(self.args.retention_s / 3600),
            "RETENTION_SWEEP_S": str(self.args.sweep_s),
            "DEADLINE_RESCAN_S": "5",
            "SESSION_TIMEOUT_S": str(self.args.session_timeout_s),
            "HEARTBEAT_INTERVAL_S": "1",
            "METADATA_MAX_AGE_MS": "5000",
            # static membership (ADR 0012): one id per worker slot, the same for its
            # replacement
            "GROUP_INSTANCE_ID": f"{self.app_id}-w{index}" if self.args.static else "",
        }
        prefixed = {f"KEEPER_AGENTS_{key}": value for key, value in agents.items()}
        plain = {"KAFKA_BOOTSTRAP_SERVERS": self.args.bootstrap, "PYTHONUNBUFFERED": "1"}
        return {**os.environ, **prefixed, **plain}

    async def create_topics(self) -> None:
        await prepare(self.settings)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.args.bootstrap)
        await admin.start()
        try:
            configs = {
                "cleanup.policy": "compact",
                "segment.ms": str(self.args.segment_s * 1000),
                "segment.bytes": str(1 << 20),
                "min.cleanable.dirty.ratio": "0.01",
                "delete.retention.ms": "1000",
                "min.compaction.lag.ms": "0",
            }
            changelog = changelog_topic(self.app_id, DESK_TABLE)
            topic = NewTopic(changelog, ORDER_COMMANDS.partitions, 1, topic_configs=configs)
            await admin.create_topics([topic])
        finally:
            await admin.close()

    async def drop_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.args.bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(self.app_id)]
            if mine and not self.args.keep_topics:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    async def configure_cards(self, producer: AIOKafkaProducer) -> None:
        for p in range(self.args.pools):
            pool = f"soak-p{p}"
            self.pools.append(pool)
            for c in range(self.args.cards):
                config = wc.CardConfigured(
                    card_id=f"{pool}-c{c}",
                    pool_id=pool,
                    pan_masked="220220******1234",
                    currency="RUB",
                    status=CardStatus.ACTIVE,
                    expires_on=date(2099, 12, 31),
                    daily_limit_minor=10**11,
                    monthly_limit_minor=10**12,
                    daily_count_limit=10**8,
                    monthly_count_limit=10**9,
                    min_order_minor=100,
                    max_order_minor=10**8,
                    version=1,
                )
                topic = self.prefix + CONFIG_CARDS.name
                await producer.send(topic, encode(config), key=config.card_id.encode())
        await producer.flush()

    async def send_life(self, producer: AIOKafkaProducer, index: int) -> str:
        pool = self.pools[index % len(self.pools)]
        desk, uid = pool_desk(pool), uuid.uuid4()
        amount = 1_000 + (index // len(self.pools)) % 90_000  # unique among a card's open
        opening = w.OpenOrder(
            uid=uid,
            partner_id=f"partner-{pool}",
            partner_order_id=f"soak-{index}",
            direction=Direction.DEPOSIT,
            amount_minor=amount,
            currency="RUB",
            ttl_s=900,
            fee_bp=200,
            pool_id=pool,
            desk=desk,
        )
        confirm = w.ConfirmPayment(uid=uid, desk=desk)
        approve = w.DecideOrder(
            uid=uid, desk=desk, verdict=w.Verdict.APPROVE, operator="soak", decision_id=uid
        )
        topic = self.prefix + ORDER_COMMANDS.name
        for message in (opening, confirm, approve):  # one key: one partition, in order
            await producer.send(topic, encode(message), key=desk.encode())
        return str(uid)

    async def follow(self, consumer: AIOKafkaConsumer, timeout_ms: int = 100) -> None:
        for records in (await consumer.getmany(timeout_ms=timeout_ms, max_records=5000)).values():
            for record in records:
                value = record.value or b""
                if APPROVED in value:
                    self.approved.add(record.key or b"")
                elif DECLINED in value:
                    self.rejected_at_open.add(record.key or b"")
                    if self.probes:
                        self.answers.add(value)  # a declined probe ends the wait, as a failure
                elif CREATED in value and self.probes:
                    self.answers.add(value)

    async def drain(self, consumer: AIOKafkaConsumer, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while self.completed + self.declined < self.sent:
            if time.monotonic() > deadline:
                missing = self.sent - self.completed - self.declined
                raise SystemExit(f"soak: {missing} lives never completed")
            await self.follow(consumer)

    async def serve_time(
        self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, *, replace: bool = True
    ) -> float:
        """SIGKILL the last worker, start its replacement at once (``replace``; else only
        once the probes are served: a worker that never comes back), and time until a probe
        life sent to every desk right after the kill is served (its ``order.created``)."""
        victim = self.workers[-1]
        readies = victim.readies()
        killed = time.monotonic()
        victim.kill()
        if replace:
            victim.start()
        uids = [await self.send_life(producer, self.sent + i) for i in range(len(self.pools))]
        self.sent += len(uids)
        self.probes = dict.fromkeys(uids, 0.0)
        self.answers.clear()
        deadline = killed + 180
        while any(v == 0.0 for v in self.probes.values()):
            if time.monotonic() > deadline:
                for worker in self.workers:
                    worker.dump_stacks()
                await asyncio.sleep(2)
                parts = consumer.assignment()
                ends = await consumer.end_offsets(list(parts))
                print(
                    "soak: read / end of order-events:",
                    {tp.partition: (await consumer.position(tp), ends[tp]) for tp in parts},
                    flush=True,
                )
                print("soak: committed / end of order-commands:", await self.commands_lag())
                raise SystemExit(
                    "soak: a killed worker's partitions never served again (stacks in "
                    + ", ".join(str(w.log_path) for w in self.workers)
                    + ")"
                )
            await self.follow(consumer)
            for uid, seen in self.probes.items():
                answers = [v for v in self.answers if uid.encode() in v]
                if any(DECLINED in v for v in answers):
                    raise SystemExit(f"soak: a probe sent after the kill was declined: {answers}")
                if seen == 0.0 and answers:
                    self.probes[uid] = time.monotonic() - killed
        worst = max(self.probes.values())
        self.probes.clear()
        self.answers.clear()
        if not replace:
            victim.start()
        # the next kill finds the group settled: the replacement ready, its standbys read
        while victim.readies() == readies and time.monotonic() < deadline:
            await self.follow(consumer, 500)
        settled = time.monotonic() + self.args.settle_s
        while time.monotonic() < settled:
            await self.follow(consumer, 500)
        return round(worst, 2)

    async def lag(self, topic: str, partitions: int) -> dict[int, tuple[int | None, int]]:
        """The workers' group: committed offset and end of each partition of ``topic``."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.args.bootstrap)
        reader = AIOKafkaConsumer(bootstrap_servers=self.args.bootstrap)
        await admin.start()
        await reader.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.app_id)
            parts = [TopicPartition(self.prefix + topic, p) for p in range(partitions)]
            ends = await reader.end_offsets(parts)
        finally:
            await reader.stop()
            await admin.close()
        return {
            tp.partition: (committed[tp].offset if tp in committed else None, ends[tp])
            for tp in parts
        }

    async def commands_lag(self) -> dict[int, tuple[int | None, int]]:
        """Committed offset and end of each ``order-commands`` partition (a stall with both
        equal had its commands applied, its answers are what is missing)."""
        return await self.lag(ORDER_COMMANDS.name, ORDER_COMMANDS.partitions)

    async def cards_applied(self, timeout_s: float = 120) -> None:
        """Wait until the workers have every card configured: the card agent commits a
        ``config-cards`` record only once the cards table's changelog has it. A platform
        configures its cards before it takes orders; lives sent earlier race the cards and
        are declined for want of one."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                lag = await self.lag(CONFIG_CARDS.name, CONFIG_CARDS.partitions)
            except GroupCoordinatorNotAvailableError:  # a new broker creates it on first use
                lag = {}
            if lag and all(committed == end for committed, end in lag.values()):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: the cards were never applied: {lag}")
            await asyncio.sleep(0.5)

    async def serve_times(
        self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer
    ) -> dict[str, Any]:
        """``--kills`` kills with a replacement at once, then ``--leave-kills`` without."""
        point: dict[str, Any] = {}
        for key, count, replace in (
            ("serve_again", self.args.kills, True),
            ("serve_again_unreplaced", self.args.leave_kills, False),
        ):
            times = [
                await self.serve_time(producer, consumer, replace=replace) for _ in range(count)
            ]
            if times:
                point[f"{key}_s"] = max(times)
                point[f"{key}_each_s"] = times
                point[f"{key}_min_median_max_s"] = [
                    min(times),
                    statistics.median(times),
                    max(times),
                ]
        return point

    @property
    def completed(self) -> int:
        return len(self.approved)

    @property
    def declined(self) -> int:
        return len(self.rejected_at_open)

    def changelog_bytes(self) -> int | None:
        """The desk changelog's segment files on the broker's disk (``--log-dir``)."""
        base = Path(self.args.log_dir)
        name = changelog_topic(self.app_id, DESK_TABLE)
        dirs = list(base.glob(f"{name}-*")) if base.is_dir() else []
        if not dirs:
            return None
        return sum(f.stat().st_size for d in dirs for f in d.glob("*.log"))

    async def compacted_bytes(self, producer: AIOKafkaProducer) -> int | None:
        """The changelog's bytes once the cleaner has had every segment: a segment rolls
        only when a record is appended after ``segment.ms``, so the last writes (the retention's
        tombstones) would otherwise stay in an active segment the cleaner never touches, and
        the figure would measure the timing of the last write. A tombstone for a key the desk
        never writes is appended to each partition (nothing reads it but a restore, which
        drops it), then the bytes are read until the cleaner (15 s back-off) leaves them
        unchanged."""
        await asyncio.sleep(self.args.segment_s + 1)
        topic = changelog_topic(self.app_id, DESK_TABLE)
        for partition in range(ORDER_COMMANDS.partitions):
            await producer.send_and_wait(topic, None, key=b'"soak/roll"', partition=partition)
        size, started = self.changelog_bytes(), time.monotonic()
        unchanged_since = started
        while time.monotonic() - started < 120:  # two back-offs at least, then 20 s still
            await asyncio.sleep(2.5)
            now, last = time.monotonic(), size
            size = self.changelog_bytes()
            if size != last:
                unchanged_since = now
            elif now - started >= 30 and now - unchanged_since >= 20:
                break
        return size

    async def checkpoint(
        self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer
    ) -> dict[str, Any]:
        live = {
            "completed": self.completed,
            "declined": self.declined,
            "rss_mib": [wk.rss_mib() for wk in self.workers],
            "table_entries": [wk.table_entries() for wk in self.workers],
        }
        await self.drain(consumer)
        settle = self.args.retention_s + self.args.segment_s + 3 * self.args.sweep_s + 20
        deadline = time.monotonic() + settle  # forgets, a segment roll, the cleaner's turn
        while time.monotonic() < deadline or any(wk.retained() for wk in self.workers):
            if time.monotonic() > deadline + 120:
                break  # reported as it stands: idle_table_entries shows what stayed
            await self.follow(consumer, 500)
        live["changelog_bytes"] = await self.compacted_bytes(producer)
        live["idle_table_entries"] = [wk.table_entries() for wk in self.workers]
        live |= await self.serve_times(producer, consumer)
        live["restore_s"] = self.workers[-1].restore_s()
        return live

    async def invariants(self) -> dict[str, Any]:
        """The Kafka-side checks of ``make reconcile`` (no PostgreSQL in the soak)."""
        state = await read_kafka_state(self.args.bootstrap, self.app_id, self.prefix)
        last: dict[str, tuple[int, int]] = {}
        # a posting re-published after a crash keeps its id: count operations, not records
        credits = {posting.uid for posting in state.postings}
        problems = [str(m) for m in log_matches_table(state) + one_order_per_request(state, {})]
        for partner, currencies in state.balances.items():
            funds = currencies["RUB"]
            last[partner] = (funds["version"], funds["available_minor"])
        credited = sum(version for version, _ in last.values())
        if credited != len(credits):
            problems.append(f"balances count {credited} operations, the ledger {len(credits)}")
        return {
            "orders_in_table": len(state.orders),
            "postings": len(state.postings),
            "problems": problems,
        }

    async def run(self) -> dict[str, Any]:
        await self.create_topics()
        producer = AIOKafkaProducer(bootstrap_servers=self.args.bootstrap, linger_ms=5)
        consumer = AIOKafkaConsumer(
            self.prefix + ORDER_EVENTS.name,
            bootstrap_servers=self.args.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await producer.start()
        await consumer.start()
        self.workers = [
            Worker(i, self.env(i), self.args.workdir / f"worker-{i}.log")
            for i in range(self.args.workers)
        ]
        results: list[dict[str, Any]] = []
        started = time.monotonic()
        try:
            await self.configure_cards(producer)
            for worker in self.workers:
                worker.start()
            await self.cards_applied()
            checkpoints = sorted(int(c) for c in self.args.checkpoints.split(","))
            shown = moved = time.monotonic()
            before = 0
            for target in checkpoints:
                while self.completed < target:
                    now = time.monotonic()
                    progress = {
                        "sent": self.sent,
                        "completed": self.completed,
                        "declined": self.declined,
                    }
                    if now - shown > 15:
                        shown = now
                        print(json.dumps(progress), flush=True)
                    if self.completed != before:
                        moved, before = now, self.completed
                    elif now - moved > 120:
                        lag = await self.commands_lag()
                        print("soak: committed / end of order-commands:", lag, flush=True)
                        raise SystemExit(f"soak: stuck at {progress}: lives lost or refused")
                    flight = self.sent - self.completed - self.declined
                    while flight < self.args.open and self.completed + flight < target:
                        await self.send_life(producer, self.sent)
                        self.sent, flight = self.sent + 1, flight + 1
                    await self.follow(consumer, 20)
                point = await self.checkpoint(producer, consumer)
                point["elapsed_s"] = round(time.monotonic() - started, 1)
                print(json.dumps(point), flush=True)
                results.append(point)
            await self.drain(consumer)
            checks = await self.invariants()
        finally:
            for worker in self.workers:
                worker.stop()
            await consumer.stop()
            await producer.stop()
            await self.drop_topics()
        return {"checkpoints": results, "invariants": checks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=AgentSettings().kafka_bootstrap_servers)
    parser.add_argument("--checkpoints", default="100000,500000,1000000")
    parser.add_argument("--open", type=int, default=200, help="lives in flight at most")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pools", type=int, default=8, help="desks (one pool each)")
    parser.add_argument("--cards", type=int, default=4, help="cards per pool")
    # above the longest wait of a command in order-commands (ADR 0008): the in-flight lives
    # over the desk's rate, with room for a rebalance
    parser.add_argument("--retention-s", type=float, default=60.0)
    parser.add_argument("--sweep-s", type=float, default=1.0)
    parser.add_argument("--segment-s", type=int, default=10)
    parser.add_argument("--session-timeout-s", type=float, default=10.0)
    parser.add_argument("--store", default="memory://")
    parser.add_argument(
        "--static",
        action="store_true",
        help="static group membership: each worker slot keeps its group instance id",
    )
    parser.add_argument("--kills", type=int, default=1, help="SIGKILLs per checkpoint")
    parser.add_argument(
        "--leave-kills",
        type=int,
        default=0,
        help="SIGKILLs per checkpoint whose worker comes back only after the probes are served",
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=5.0,
        help="after a replacement is ready, before the next kill",
    )
    parser.add_argument(
        "--standby",
        type=int,
        default=AgentSettings().table_standby_replicas,
        help="table standby replicas (the setting's default)",
    )
    parser.add_argument(
        "--log-dir",
        default=os.environ.get("KEEPER_KAFKA_DATA_DIR", str(ROOT / ".local/kafka/data")),
        help="the broker's log.dirs, to measure the changelog on disk",
    )
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/soak.json")
    args = parser.parse_args(argv)
    tag = uuid.uuid4().hex[:8]
    args.workdir = Path(tempfile.mkdtemp(prefix=f"keeper-soak-{tag}-"))
    soak = Soak(args, prefix=f"soak-{tag}.", app_id=f"soak-{tag}")
    print(f"soak {tag}: logs in {args.workdir}", flush=True)
    report = asyncio.run(soak.run())
    report |= {"args": {k: str(v) for k, v in vars(args).items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["invariants"]), flush=True)
    return 1 if report["invariants"]["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
