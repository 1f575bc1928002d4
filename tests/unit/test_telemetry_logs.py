"""Structured logs: JSON lines with the work's context, readable lines on a terminal, and the
card-number scan still finds a number that slips into a message."""

from __future__ import annotations

import io
import json
import logging

import pytest

from telemetry import logs
from tests.fixtures.pan_scan import card_numbers


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("keeper.test", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_json_line_has_time_level_logger_message_and_context():
    with logs.bound(request_id="r-1", uid="0b7a1f4e-2459-4382-8725-8a0e52671851"):
        line = logs.JsonFormatter().format(record("created %s", "order", partner_id="shop"))
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "keeper.test"
    assert entry["msg"] == "created order"
    assert entry["request_id"] == "r-1"
    assert entry["uid"] == "0b7a1f4e-2459-4382-8725-8a0e52671851"
    assert entry["partner_id"] == "shop"
    assert entry["ts"].endswith("Z")
    assert "\n" not in line


def test_context_ends_with_its_block_and_none_is_left_out():
    with logs.bound(request_id="r-2", uid=None):
        assert logs.context() == {"request_id": "r-2"}
    assert logs.context() == {}


def test_an_exception_stays_inside_the_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        made = record("failed")
        made.exc_info = sys.exc_info()
    entry = json.loads(logs.JsonFormatter().format(made))
    assert "ValueError: boom" in entry["exc"]


def test_human_line_appends_the_context():
    with logs.bound(request_id="r-3"):
        line = logs.HumanFormatter().format(record("hello"))
    assert line.endswith("INFO keeper.test: hello [request_id=r-3]")


@pytest.mark.parametrize("pan", ["4111111111111111", "5555 5555 5555 4444", "4000-0000-0000-0002"])
def test_the_pan_scan_reads_json_lines(pan: str):
    """A card number in a message is the same digits in the JSON string: the scan that
    guards the logs (tests/fixtures/pan_scan.py) still finds it."""
    line = logs.JsonFormatter().format(record("payer card %s", pan))
    assert card_numbers(line) == [pan]
    assert card_numbers(logs.HumanFormatter().format(record("payer card %s", pan))) == [pan]


def test_configure_writes_json_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch):
    stream = io.StringIO()  # not a TTY
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        logs.configure()
        logs.configure()  # idempotent: one handler of ours
        logging.getLogger("keeper.test").info("ready")
        ours = [h for h in root.handlers if getattr(h, "_keeper", False)]
        assert len(ours) == 1
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if "ready" in x]
    assert line["msg"] == "ready"


def test_formatter_picks_by_terminal():
    assert isinstance(logs.formatter(json_lines=True), logs.JsonFormatter)
    assert isinstance(logs.formatter(json_lines=False), logs.HumanFormatter)
