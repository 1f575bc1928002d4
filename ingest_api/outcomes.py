"""Send an order command and learn its outcome from the order's events (ADR 0003).

:func:`ask` judges the command against the newest version of the order this process knows
(:class:`~ingest_api.order_view.OrderView`, else ``lookup``, e.g. PostgreSQL): a command the
core refuses is answered at once and never sent; one that already took effect is answered
from that version; otherwise it is sent, and every later version of the order is judged until
one decides it (:func:`domain.outcomes.judge`) or the wait runs out. The order agent applies
the command with the same core and the same instant, so both reach the same verdict: a
command the agent refuses publishes nothing, and the version that did change the order
(another operator's decision, the payer's confirmation) refuses this one here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.commands import Command
from domain.orders import TERMINAL
from domain.outcomes import Awaiting, Judgement, Refused, judge
from ingest_api.bus import CommandBus
from ingest_api.errors import DOMAIN_STATUS, ApiError
from ingest_api.order_view import OrderView, Watch
from schemas.orders import OrderSnapshot
from schemas.translation import OrderCommand, epoch_ms, to_command

#: Where to read an order the view does not hold (None: nowhere).
Lookup = Callable[[uuid.UUID], Awaitable[OrderSnapshot | None]]
#: Wait until the view holds everything published so far (bounded).
CatchUp = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What was concluded: ``judgement`` None if no version decided within the wait;
    ``snapshot`` the version judged last (None: the order was never seen)."""

    judgement: Judgement | None
    snapshot: OrderSnapshot | None


async def ask(
    view: OrderView,
    bus: CommandBus,
    command: OrderCommand,
    *,
    timeout_s: float,
    lookup: Lookup | None = None,
    catch_up: CatchUp | None = None,
) -> Outcome:
    """Judge ``command``, send it if it is still to be applied, and follow the order.

    A refusal is only answered once the view has caught up with ``order-events`` (``catch_up``,
    one broker round trip, on refusals alone): a view a moment behind (another worker's
    create, the payer's confirmation just published) must not refuse what the order now
    allows.
    """
    at = datetime.now(UTC)
    core = to_command(command, epoch_ms(at))  # a DomainError here is the caller's 4xx
    with view.watching(command.uid) as watch:  # before reading: no version slips by
        known = view.latest(command.uid)
        if known is None and lookup is not None:
            known = newest(await lookup(command.uid), watch.latest)
        judgement = judge(known.to_order() if known else None, core)
        if isinstance(judgement, Refused) and catch_up is not None and may_move(known):
            await catch_up()
            fresher = newest(known, watch.latest, view.latest(command.uid))
            if fresher is not known:
                known, judgement = fresher, judge(fresher.to_order() if fresher else None, core)
        if not isinstance(judgement, Awaiting):
            return Outcome(judgement, known)
        await bus.send(to_desk(command, known), occurred_at=at)
        return await follow(watch, core, known, timeout_s)


async def follow(
    watch: Watch, core: Command, known: OrderSnapshot | None, timeout_s: float
) -> Outcome:
    """Judge each version past ``known`` until one decides ``core``, or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        after = known.version if known is not None else 0
        later = await watch.next(after, deadline - time.monotonic())
        if later is None:
            return Outcome(None, known)
        judgement = judge(later.to_order(), core)
        if not isinstance(judgement, Awaiting):
            return Outcome(judgement, later)
        known = later


def to_desk(command: OrderCommand, known: OrderSnapshot | None) -> OrderCommand:
    """``command`` addressed to the desk that owns the order (ADR 0005), as its newest
    snapshot names it. An opening names its desk itself; an order recorded before desks
    existed names none, and its command goes by uid as it did then."""
    if command.desk is not None or known is None or known.desk is None:
        return command
    return command.model_copy(update={"desk": known.desk})


def may_move(known: OrderSnapshot | None) -> bool:
    """Whether a later version may exist that the view has not seen yet (not terminal)."""
    return known is None or known.status not in TERMINAL


def newest(*snapshots: OrderSnapshot | None) -> OrderSnapshot | None:
    found = [s for s in snapshots if s is not None]
    return max(found, key=lambda s: s.version) if found else None


def refusal(refused: Refused) -> ApiError:
    """The API's answer to a refused command: the domain code, its HTTP status, the why."""
    return ApiError(DOMAIN_STATUS.get(refused.code, 422), refused.code, refused.message)
