"""Static group membership without a broker (ADR 0012): the setting reaches Faust's consumer,
and the rule that tells a replaced member from one whose session lapsed.

The broker-side behaviour (a replacement in the same generation, a twin fenced, a departed
worker's partitions moved after the session timeout) is in
``tests/integration/test_static_membership.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.commit import OffsetCommitResponse_v2
from aiokafka.protocol.group import HeartbeatResponse_v1, SyncGroupResponse_v0
from pydantic import ValidationError

from stream_agents import membership
from stream_agents.app import create_app
from stream_agents.settings import AgentSettings


def test_the_instance_id_reaches_faust_and_installs_the_guard(tmp_path: Path):
    settings = AgentSettings(
        app_id="unit", datadir=tmp_path, web_enabled=False, group_instance_id="vm-agents-2"
    )
    app = create_app(settings)
    assert app.conf.consumer_group_instance_id == "vm-agents-2"
    assert getattr(GroupCoordinator, "_keeper_membership_guard", False)


def test_dynamic_membership_is_the_default(tmp_path: Path):
    app = create_app(AgentSettings(app_id="unit", datadir=tmp_path, web_enabled=False))
    assert app.conf.consumer_group_instance_id is None


@pytest.mark.parametrize("bad", ["two words", "a/b", "x" * 201])
def test_an_instance_id_is_a_plain_name(bad: str):
    with pytest.raises(ValidationError):
        AgentSettings(group_instance_id=bad)


def test_the_session_timeout_stays_at_or_above_the_brokers_minimum():
    with pytest.raises(ValidationError):
        AgentSettings(session_timeout_s=5.9)
    assert AgentSettings(session_timeout_s=6).session_timeout_s == 6


@pytest.mark.parametrize(
    ("accepted_at", "now", "verdict"),
    [
        (None, 100.0, False),  # no heartbeat accepted yet: a join that failed, not a fence
        (99.0, 100.0, True),  # accepted a second ago: its session was alive, so it was replaced
        (90.5, 100.0, True),
        (90.0, 100.0, False),  # a whole session timeout of silence: the session lapsed
        (50.0, 100.0, False),
    ],
)
def test_a_member_that_loses_its_id_within_a_live_session_was_replaced(
    accepted_at: float | None, now: float, verdict: bool
):
    assert membership.replaced(accepted_at, now, session_timeout_s=10.0) is verdict


def test_the_guard_installs_once():
    membership.install()
    wrapped = GroupCoordinator.reset_generation
    membership.install()
    assert GroupCoordinator.reset_generation is wrapped


@pytest.mark.parametrize(
    ("response", "unknown"),
    [
        (HeartbeatResponse_v1(0, 25), True),
        (HeartbeatResponse_v1(0, 0), False),
        (HeartbeatResponse_v1(0, 27), False),  # rebalance in progress: still a member
        (HeartbeatResponse_v1(0, 22), False),  # illegal generation: still a member
        (SyncGroupResponse_v0(25, b""), True),
        (OffsetCommitResponse_v2([("t", [(0, 0), (1, 25)])]), True),
        (OffsetCommitResponse_v2([("t", [(0, 0), (1, 0)])]), False),
    ],
)
def test_only_an_unknown_member_answer_counts_as_losing_the_id(response: object, unknown: bool):
    assert membership.unknown_member(response) is unknown
