"""Static group membership's guard (ADR 0012): a worker whose group instance id another
process took stops at once, as if killed -9, instead of joining again and taking it back.

With ``group.instance.id`` the broker hands a member's partitions to whoever joins next with
the same id, without a rebalance: that is what lets a replacement serve at once. The member
it replaced is told only indirectly: its next heartbeat or commit is refused with "unknown
member id" (aiokafka speaks the protocol versions without the instance id), and aiokafka's
answer to that is to join again, which would take the id back and start a tug of war in
which both processes process the same partitions in turn.

The rule: the broker forgets a static member's id only when its session lapses (no heartbeat
it accepted for a session timeout), when a rebalance goes on without it for the rebalance
timeout (60 s, its heartbeats meanwhile answered "rebalance in progress", not accepted), when
an administrator removes it, or when another process joins with its id. So a static member
told "unknown member id" within one session timeout of a heartbeat the coordinator accepted
was replaced (or removed by hand, where a restart costs nothing). The worker then
leaves with :data:`FENCED_EXIT` without flushing or committing anything: what it did after
its last commit is redone by the member that holds the id, exactly as after a kill -9, which
every handler tolerates (at-least-once, ADR 0005). Its supervisor restarts it.

The same goes for aiokafka's coordinator task dying of an unexpected error (Faust's assignor
asserts that an assignment names this worker's own URL, which a replacement with another web
host or port fails): the process would otherwise stay up holding no partitions, forever. That
one first leaves the group, so that its restart joins afresh and gets an assignment of its own.

aiokafka has no hook for either, so :func:`install` wraps three methods of its
``GroupCoordinator`` class, once per process; the wrappers act only for a coordinator with a
group instance id and are otherwise transparent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import errors
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.commit import OffsetCommitRequest
from aiokafka.protocol.group import (
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    SyncGroupRequest,
)

log = logging.getLogger(__name__)

#: The exit status of a worker that stopped because another process took its group instance id
#: (or its group coordination failed). ``EX_TEMPFAIL``: the supervisor starts it again.
FENCED_EXIT = 75

_INSTALLED = "_keeper_membership_guard"
_ACCEPTED = "_keeper_heartbeat_accepted_at"
_UNKNOWN = "_keeper_told_unknown_member"


def unknown_member(response: Any) -> bool:
    """Whether a heartbeat, sync or commit answer says the member id is unknown."""
    code = errors.UnknownMemberIdError.errno
    if getattr(response, "error_code", None) == code:
        return True
    topics = getattr(response, "topics", None) or ()
    return any(partition[-1] == code for _topic, partitions in topics for partition in partitions)


def replaced(heartbeat_accepted_at: float | None, now: float, session_timeout_s: float) -> bool:
    """Whether a static member that just lost its member id was replaced by another process:
    the coordinator accepted one of its heartbeats (sent at ``heartbeat_accepted_at``) less
    than a session timeout ago, so its session cannot have lapsed."""
    return heartbeat_accepted_at is not None and now - heartbeat_accepted_at < session_timeout_s


def _stop(reason: str, coordinator: Any) -> None:
    log.error(
        "membership: %s; stopping now (exit %d) without committing: the member that holds "
        "group instance id %r redoes what followed the last commit",
        reason,
        FENCED_EXIT,
        coordinator._group_instance_id,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(FENCED_EXIT)


def install() -> None:
    """Guard every static member of this process (idempotent)."""
    if getattr(GroupCoordinator, _INSTALLED, False):
        return
    send_req: Callable[[Any, Any], Awaitable[Any]] = GroupCoordinator._send_req
    reset_generation: Callable[[Any], None] = GroupCoordinator.reset_generation
    coordination: Callable[[Any], Awaitable[None]] = GroupCoordinator._coordination_routine

    async def _send_req(self: Any, request: Any) -> Any:
        sent = time.monotonic()
        response = await send_req(self, request)
        if isinstance(request, HeartbeatRequest) and response.error_code == 0:
            setattr(self, _ACCEPTED, sent)
        if isinstance(request, HeartbeatRequest | SyncGroupRequest | OffsetCommitRequest):
            setattr(self, _UNKNOWN, unknown_member(response))
        return response

    def _reset_generation(self: Any) -> None:
        if (
            self._group_instance_id is not None
            and self.member_id != JoinGroupRequest.UNKNOWN_MEMBER_ID
            and getattr(self, _UNKNOWN, False)
            and not self._closing.done()
            and replaced(
                getattr(self, _ACCEPTED, None), time.monotonic(), self._session_timeout_ms / 1000
            )
        ):
            _stop(f"member {self.member_id} was replaced in group {self.group_id!r}", self)
        reset_generation(self)

    async def _coordination_routine(self: Any) -> None:
        try:
            await coordination(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._group_instance_id is not None and not self._closing.done():
                # Leave, unlike a static member's usual exit: the member this process just
                # became holds an assignment it cannot take (another URL, say); left in the
                # group, every restart would replace it, fail again and renew its session.
                if self.member_id != JoinGroupRequest.UNKNOWN_MEMBER_ID:
                    leave = LeaveGroupRequest(self.group_id, self.member_id)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(send_req(self, leave), 2.0)
                _stop(f"group coordination failed ({exc!r})", self)
            raise

    GroupCoordinator._send_req = _send_req
    GroupCoordinator.reset_generation = _reset_generation
    GroupCoordinator._coordination_routine = _coordination_routine
    setattr(GroupCoordinator, _INSTALLED, True)
