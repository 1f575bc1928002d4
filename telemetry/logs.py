"""Structured logs: one JSON object per line, or a readable line on a terminal (ADR 0009).

Every process calls :func:`configure` once at start (the API through uvicorn's
``--log-config infra/logging.json``, the agents through Faust's ``logging_config``, the
consumers through :func:`stream_agents.process.configure_logging`). A line carries the time,
level, logger and message, plus the context of the work in hand, bound with :func:`bound`:

* ``request_id``: the API's ``X-Request-Id`` (the caller's, or one it made up), set by the
  admission middleware for everything the request logs;
* ``uid``: the order the line is about, where there is one.

Extra fields given as ``log.info("...", extra={"partner_id": ...})`` join the object. The
formatter adds nothing the message does not already hold, so the scan for card numbers in
logs (``tests/fixtures/pan_scan.py``) reads the JSON as it read plain lines: a number in a
message is the same digits in a JSON string.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Final

#: The context of the work in hand, by field name (``request_id``, ``uid``).
_context: ContextVar[dict[str, str]] = ContextVar("keeper_log_context", default={})  # noqa: B039

HUMAN_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: The attributes every ``LogRecord`` has; anything else on a record came in through ``extra``.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Lines logged inside the block carry ``fields`` (``None`` values are left out)."""
    token = _context.set(_context.get() | {k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: str) -> None:
    """Add ``fields`` to the context of the current task (until it ends)."""
    _context.set(_context.get() | fields)


def context() -> dict[str, str]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...context, ...extra, "exc"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry |= _context.get()
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class HumanFormatter(logging.Formatter):
    """The classic line, with the context appended (``[request_id=... uid=...]``)."""

    def __init__(self) -> None:
        super().__init__(HUMAN_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _context.get()
        if not fields:
            return line
        head, _, tail = line.partition("\n")
        tags = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{head} [{tags}]" + (f"\n{tail}" if tail else "")


def formatter(json_lines: bool | None = None) -> logging.Formatter:
    """JSON lines unless stderr is a terminal (``json_lines`` decides when given). Also the
    factory ``infra/logging.json`` names for uvicorn and Faust (``"()"``)."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    return JsonFormatter() if json_lines else HumanFormatter()


def dict_config(level: str = "INFO") -> dict[str, Any]:
    """The same configuration as a :func:`logging.config.dictConfig` mapping (Faust's
    ``logging_config``): the root logger on stderr through :func:`formatter`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"keeper": {"()": "telemetry.logs.formatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "keeper",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
    }


def configure(level: int = logging.INFO, *, json_lines: bool | None = None) -> None:
    """The root logger on stderr, one line per record (``infra/keeper.sh`` waits for start-up
    lines in the components' logs; their text is the ``msg`` of the JSON)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(json_lines))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_keeper", False)]:
        root.removeHandler(old)
    handler._keeper = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
