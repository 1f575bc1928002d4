"""Why the desk keeps no standby replica by default (ADR 0008, December addendum).

With Faust's in-memory store, a worker restores a partition it has just been given by
reading the partition's changelog from the start. This holds even when the worker
followed that partition as a standby until then: the standby's position is not where
the restore begins. So a standby copy saves no restore time; it only costs memory and
reads. If a Faust upgrade changes this (for example, a store that keeps its offsets),
the second test fails, and the decision must be weighed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from faust.types import TP

from stream_agents.app import create_app
from stream_agents.settings import AgentSettings
from stream_agents.table_keys import DESK_TABLE


class _Log:
    """The one consumer call the recovery makes to place a partition: its log's start."""

    def __init__(self, start: int) -> None:
        self.start = start

    async def earliest_offsets(self, *tps: TP) -> Mapping[TP, int]:
        return {tp: self.start for tp in tps}


def test_no_standby_replica_unless_configured(tmp_path: Path):
    app = create_app(AgentSettings(app_id="unit-standby", datadir=tmp_path, web_enabled=False))
    assert app.conf.table_standby_replicas == 0
    settings = AgentSettings(
        app_id="unit-standby-1", datadir=tmp_path, web_enabled=False, table_standby_replicas=1
    )
    assert create_app(settings).conf.table_standby_replicas == 1


async def test_a_promoted_standby_is_restored_from_the_changelogs_start(tmp_path: Path):
    settings = AgentSettings(
        app_id="unit-promote", datadir=tmp_path, web_enabled=False, table_standby_replicas=1
    )
    app = create_app(settings)
    table = app.tables[DESK_TABLE]
    recovery = app.tables.recovery
    tp = TP(table._changelog_topic_name(), 0)

    recovery.add_standby(table, tp)
    recovery.standby_offsets[tp] = 41_999  # the standby had applied the log up to here
    recovery.add_active(table, tp)  # then its owner died and the partition came here
    await recovery._build_offsets(_Log(start=7), {tp}, recovery.active_offsets, "active")

    # read again from the first record kept (offset 7), not from offset 42 000
    assert recovery.active_offsets[tp] == 6
    assert table.persisted_offset(tp) is None
