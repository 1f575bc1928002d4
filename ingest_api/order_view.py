"""The API's event-fed view of orders: the newest snapshot per uid, and waits for the next one.

Every API process reads all of ``order-events`` (:class:`~ingest_api.payform.feed.OrderFeed`)
and hands each order snapshot to :meth:`OrderView.publish`. Events carry the whole order and
its version, so the view keeps only the newest version per uid: a repeated or late event
(lower or equal version) changes nothing.

Bounded: open orders are kept until they finish; finished ones in a least-recently-updated
ring of ``finished_size``. An uid the view does not hold (an old order, or one changed
before this process started) is read from PostgreSQL by the caller
(:mod:`ingest_api.outcomes`).

A :class:`Watch` registered *before* the caller reads the view (or PostgreSQL) and sends its
command sees every later version: nothing can slip between the read and the wait.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Iterator

from domain.orders import TERMINAL
from ingest_api.latest import Latest
from schemas.orders import OrderSnapshot

DEFAULT_FINISHED_SIZE = 20_000


#: One request waiting on one order: the newest OrderSnapshot offered since it was opened.
Watch = Latest[OrderSnapshot]


class OrderView:
    def __init__(self, finished_size: int = DEFAULT_FINISHED_SIZE) -> None:
        self._open: dict[uuid.UUID, OrderSnapshot] = {}
        self._finished: OrderedDict[uuid.UUID, OrderSnapshot] = OrderedDict()
        self._finished_size = finished_size
        self._watches: dict[uuid.UUID, set[Watch]] = {}

    def __len__(self) -> int:
        return len(self._open) + len(self._finished)

    def latest(self, uid: uuid.UUID) -> OrderSnapshot | None:
        """The newest version of ``uid`` this process has seen (None: not in memory)."""
        return self._open.get(uid) or self._finished.get(uid)

    def publish(self, snapshot: OrderSnapshot) -> None:
        """Keep ``snapshot`` if it is newer than what is known, and wake the watches on it."""
        for watch in self._watches.get(snapshot.uid, ()):
            watch.offer(snapshot)
        known = self.latest(snapshot.uid)
        if known is not None and known.version >= snapshot.version:
            return
        if snapshot.status in TERMINAL:
            self._open.pop(snapshot.uid, None)
            self._finished[snapshot.uid] = snapshot
            self._finished.move_to_end(snapshot.uid)
            while len(self._finished) > self._finished_size:
                self._finished.popitem(last=False)
        else:
            self._open[snapshot.uid] = snapshot

    @contextlib.contextmanager
    def watching(self, uid: uuid.UUID) -> Iterator[Watch]:
        """Watch ``uid`` for the duration of a request (register before reading the view)."""
        watch = Watch(uid)
        self._watches.setdefault(uid, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches.get(uid)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[uid]

    @property
    def watch_count(self) -> int:
        return sum(len(watches) for watches in self._watches.values())
