"""When the cards table counts as read (``stream_agents.confirmed.read_to_end``)."""

from __future__ import annotations

from faust.types import TP

from stream_agents.confirmed import read_to_end

CARDS = "keeper-cards-changelog"
DESK = "keeper-desk-changelog"


def test_not_assigned_yet_is_not_read() -> None:
    assert not read_to_end(CARDS, active={}, standby_ends={}, standby_read={}, unapplied=0)
    other = {TP(DESK, 0): 10}
    assert not read_to_end(CARDS, active=other, standby_ends=other, standby_read={}, unapplied=0)


def test_an_active_partition_is_whole_once_streams_flow() -> None:
    tp = TP(CARDS, 0)
    # recovery blocks the streams until actives are read: the standby read offset is moot
    assert read_to_end(CARDS, active={tp: 31}, standby_ends={tp: 31}, standby_read={}, unapplied=0)


def test_a_standby_partition_is_whole_at_the_end_recovery_measured() -> None:
    tp = TP(CARDS, 0)
    ends = {tp: 31, TP(DESK, 1): 900}
    for read, whole in ((-1, False), (0, False), (30, False), (31, True), (40, True)):
        reads = {tp: read} if read >= 0 else {}
        caught_up = read_to_end(
            CARDS, active={}, standby_ends=ends, standby_read=reads, unapplied=0
        )
        assert caught_up is whole
    # another table's standby lag does not hold the cards back
    assert read_to_end(CARDS, active={}, standby_ends=ends, standby_read={tp: 31}, unapplied=0)


def test_an_empty_changelog_is_read_at_once() -> None:
    tp = TP(CARDS, 0)
    assert read_to_end(CARDS, active={}, standby_ends={tp: -1}, standby_read={}, unapplied=0)


def test_records_still_in_the_recovery_buffer_are_not_read() -> None:
    tp = TP(CARDS, 0)
    assert not read_to_end(
        CARDS, active={}, standby_ends={tp: 31}, standby_read={tp: 31}, unapplied=1
    )
