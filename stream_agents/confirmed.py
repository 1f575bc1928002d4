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
from collections.abc import Awaitable, Iterable
from typing import Any

import faust
from faust.types import FutureMessage, RecordMetadata


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
    whose changelog write a crash lost would otherwise be forgotten at the next restart."""


async def confirm(writes: Iterable[Awaitable[RecordMetadata]]) -> None:
    """Wait until the broker has acknowledged every one of ``writes``; the first failure
    propagates (after the others are settled)."""
    results = await asyncio.gather(*writes, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
