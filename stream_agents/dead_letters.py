"""``python -m stream_agents.dead_letters``: list, retry and resolve quarantined records.

    python -m stream_agents.dead_letters list [--limit N]
    python -m stream_agents.dead_letters retry ID [--actor NAME]
    python -m stream_agents.dead_letters retry --all-open [--actor NAME]
    python -m stream_agents.dead_letters resolve ID [--actor NAME]

A retry re-publishes the stored raw record with its key to its source topic and marks the
row ``retried`` (:func:`db.repositories.dead_letters.retry`, audited with the actor); each
retry is its own transaction. Use it after the cause is fixed (the missing partner created,
the consumer upgraded): if the record fails again, it comes back as a new open dead letter.
:class:`KafkaRepublisher` is the synchronous publisher the console's retry button uses too.
Exit status: 0 done, 1 refused (unknown id, not open), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Final, TextIO

from aiokafka import AIOKafkaProducer
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, session_factory
from db.repositories import dead_letters as repo
from db.repositories.errors import RepositoryError
from stream_agents.projector import ProjectorSettings

DEFAULT_TIMEOUT_S: Final = 30.0


class KafkaRepublisher:
    """A :class:`~db.repositories.dead_letters.Republisher` for synchronous callers.

    One idempotent producer (``acks=all``) on an event loop of its own thread, started on the
    first publish; :meth:`republish` returns once the broker has the record. Use it as a
    context manager (or call :meth:`close`).
    """

    def __init__(self, bootstrap: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dead-letter-republisher", daemon=True
        )
        self._thread.start()

    def republish(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        send = asyncio.run_coroutine_threadsafe(self._send(topic, key, value), self._loop)
        send.result(self._timeout_s)

    async def _send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
            self._producer = producer
        await self._producer.send_and_wait(topic, value, key=key)

    async def _stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(self._timeout_s)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._timeout_s)
        self._loop.close()

    def __enter__(self) -> KafkaRepublisher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def show(letter: repo.DeadLetterView) -> str:
    order = f" order {letter.order_uid}" if letter.order_uid else ""
    return (
        f"{letter.id} {letter.status} {letter.first_seen_at:%Y-%m-%d %H:%M:%S} "
        f"{letter.consumer} {letter.source_topic}[{letter.source_partition}]"
        f"@{letter.source_offset}{order}: {letter.reason}"
    )


def list_command(sessions: sessionmaker[Session], limit: int, out: TextIO) -> int:
    with sessions() as session:
        letters, total = repo.list_open(session, limit), repo.count_open(session)
    for letter in letters:
        print(show(letter), file=out)
    print(f"{total} open dead letter(s)", file=out)
    return 0


def retry_command(
    sessions: sessionmaker[Session],
    publisher: repo.Republisher,
    ids: Sequence[int],
    actor: str,
    out: TextIO,
) -> int:
    """Retry each id in its own transaction; 1 if any was refused (the others still go)."""
    status = 0
    for dead_letter_id in ids:
        try:
            with sessions.begin() as session:
                letter = repo.retry(session, publisher, dead_letter_id, actor)
        except RepositoryError as exc:
            print(f"{exc.code}: {exc.message}", file=sys.stderr)
            status = 1
            continue
        print(f"retried {show(letter)}", file=out)
    return status


def resolve_command(
    sessions: sessionmaker[Session], dead_letter_id: int, actor: str, out: TextIO
) -> int:
    try:
        with sessions.begin() as session:
            letter = repo.resolve(session, dead_letter_id, actor)
    except RepositoryError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(f"resolved {show(letter)}", file=out)
    return 0


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    settings = ProjectorSettings()
    parser = argparse.ArgumentParser(
        prog="python -m stream_agents.dead_letters",
        description="Keeper dead letters: list, retry after a fix, resolve",
    )
    parser.add_argument("--database-url", default=settings.database_url)
    parser.add_argument("--kafka", default=settings.kafka_bootstrap_servers, help="bootstrap")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the open dead letters, oldest first")
    listing.add_argument("--limit", type=int, default=repo.DEFAULT_LIMIT)
    retry = commands.add_parser("retry", help="re-publish to the source topic after a fix")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int)
    which.add_argument("--all-open", action="store_true", help="every open dead letter")
    resolve = commands.add_parser("resolve", help="close an open dead letter without retrying")
    resolve.add_argument("id", type=int)
    for command in (retry, resolve):
        command.add_argument("--actor", default="cli", help="who acts (for the audit log)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parse(argv)
    engine = make_engine(args.database_url, hide_parameters=True)
    sessions = session_factory(engine)
    try:
        if args.command == "list":
            return list_command(sessions, args.limit, out)
        if args.command == "resolve":
            return resolve_command(sessions, args.id, args.actor, out)
        with sessions() as session:
            ids = repo.open_ids(session, limit=10**9) if args.all_open else [args.id]
        with KafkaRepublisher(args.kafka) as publisher:
            return retry_command(sessions, publisher, ids, args.actor, out)
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
