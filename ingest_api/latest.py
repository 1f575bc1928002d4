"""One request waiting on one order: the newest version offered since it was registered.

The payment form's live status (:mod:`ingest_api.payform.feed`) and the API's answers to
commands (:mod:`ingest_api.order_view`) both register a :class:`Latest` for an order *before*
reading its current state, so no version can slip between the read and the wait.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Generic, Protocol, TypeVar


class Versioned(Protocol):
    """Anything that carries its order's version (events number every change)."""

    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


class Latest(Generic[V]):
    """The newest ``V`` offered for ``uid``; :meth:`next` waits for one past a version."""

    def __init__(self, uid: uuid.UUID) -> None:
        self.uid = uid
        self.latest: V | None = None
        self._changed = asyncio.Event()

    def offer(self, update: V) -> None:
        if self.latest is None or update.version > self.latest.version:
            self.latest = update
            self._changed.set()

    async def next(self, after_version: int, timeout_s: float) -> V | None:
        """The newest update past ``after_version``; None if none comes within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self.latest is None or self.latest.version <= after_version:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return None
        return self.latest
