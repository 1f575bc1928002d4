"""Writes the broker has acknowledged before a batch's offsets may be committed.

At least once delivery only holds if a consumed record's offset is committed after every
write it caused is durable: then a crash redelivers the record and its step runs again (a
repeat or a repair, :mod:`stream_agents.desk.step`). Faust does not give that for table
writes. A table write is queued in Faust's producer buffer and handed to the Kafka client by
a background task; the commit's flush (``ProducerBuffer.flush``) gives up after 0.1 s
without progress, and a record the background task has taken but not yet handed over counts
as sent. So an offset can be committed while the changelog write of its step is still in
the worker's memory, and a SIGKILL then loses the write for good: the balance forgets a
credit whose ``ledger.posted`` was already published, and the next operation reuses its
version (seen as an invariant-1 mismatch in the kill fault suite).

:class:`ConfirmedTable` keeps the future of every changelog write it makes, and the desk
waits for them, and for its sent records, before the batch is acknowledged
(:func:`confirm`). A failed write raises: the batch is not acknowledged and the worker stops,
to be restarted by its supervisor and redelivered the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, cast

import faust
from faust.tables.manager import TableManager
from faust.types import TP, FutureMessage, RecordMetadata


class _Confirming:
    """Remembers a Faust table's changelog writes until :meth:`written` hands them out."""

    _unconfirmed: list[FutureMessage]

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        future: FutureMessage = super().send_changelog(*args, **kwargs)  # type: ignore[misc]
        self.__dict__.setdefault("_unconfirmed", []).append(future)
        return future

    def written(self) -> list[FutureMessage]:
        """The changelog writes made since the last call, to be awaited."""
        written: list[FutureMessage] = self.__dict__.get("_unconfirmed", [])
        self._unconfirmed = []
        return written


class ConfirmedTable(_Confirming, faust.Table):  # type: ignore[type-arg]
    """The desk's table (:mod:`stream_agents.desk.agent`)."""


class ConfirmedGlobalTable(_Confirming, faust.GlobalTable):
    """The cards' global table, fed by ``config-cards``: a card's blocking or limit change
    whose changelog write a crash lost would otherwise be forgotten at the next restart.

    It also says when this worker has read it (:meth:`caught_up`). Faust's assignor gives a
    global table's changelog as an *active* partition to one worker only; the others read it
    as a standby, in the background, while their streams already flow. A worker that starts
    or replaces a killed one would then place its first orders against an empty or stale card
    list: declining them for want of a card, or placing one on a card blocked meanwhile.
    """

    _caught_up = False

    async def caught_up(self, poll_s: float = 0.02) -> None:
        """Return once the table holds its changelog up to the end it had when this worker's
        recovery measured it; at once after that (the worker keeps reading it)."""
        while not self._caught_up:
            recovery = cast(TableManager, self.app.tables).recovery
            self._caught_up = read_to_end(
                self.changelog_topic.get_topic_name(),
                active=recovery.active_highwaters,
                standby_ends=recovery.standby_highwaters,
                standby_read=recovery.standby_offsets,
                unapplied=len(recovery.buffers.get(self, ())),
            )
            if not self._caught_up:
                await asyncio.sleep(poll_s)


def read_to_end(
    topic: str,
    *,
    active: Mapping[TP, int],
    standby_ends: Mapping[TP, int],
    standby_read: Mapping[TP, int],
    unapplied: int,
) -> bool:
    """Whether a table has applied its changelog ``topic`` up to the ends recovery measured.

    A partition recovered as active is whole before any stream flows (Faust's recovery
    blocks on it). A standby one is whole once its read offset reaches the end measured
    (Faust's highwater: the last offset, -1 for an empty log) and nothing read waits in the
    recovery buffer. A topic in neither map is not assigned yet: not read.
    """
    actives = {tp for tp in active if tp.topic == topic}
    ends = {tp: end for tp, end in standby_ends.items() if tp.topic == topic and tp not in actives}
    if not actives and not ends:
        return False
    return unapplied == 0 and all(standby_read.get(tp, -1) >= end for tp, end in ends.items())


async def confirm(writes: Iterable[Awaitable[RecordMetadata]]) -> None:
    """Wait until the broker has acknowledged every one of ``writes``; the first failure
    propagates (after the others are settled)."""
    results = await asyncio.gather(*writes, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
