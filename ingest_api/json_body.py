"""A JSON body must have one meaning: no duplicate keys, no lone surrogates.

``json.loads`` lets the last of two equal keys win and decodes ``"\\ud800"`` to a string no
UTF-8 encoder can write. A signed body whose meaning depends on which parser reads it, or
that holds text nothing downstream can store, is refused here, once for every endpoint,
before authentication and validation read it (like a syntax error, which FastAPI answers
with ``400`` before authentication too):

- a key repeated in one object: ``422 duplicate_key``, ``details`` naming the key;
- a lone surrogate in any key or string: ``422 invalid_text``, reason ``lone_surrogate``.

A body that is not JSON at all is left to FastAPI (``400 malformed_json``); so is every
other check of the text rule, which belongs to each field's type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.text import TextProblem
from ingest_api.errors import error_response, invalid_text_response, printable

#: Methods whose body FastAPI may parse as JSON here.
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    key: str


@dataclass(frozen=True, slots=True)
class LoneSurrogate:
    field: str


JsonProblem = DuplicateKey | LoneSurrogate


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKeyError(key)
        found[key] = value
    return found


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def _surrogate_path(document: Any) -> str | None:
    """The dotted path of the first key or string holding a lone surrogate (iterative, so a
    deeply nested document cannot exhaust the stack)."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and _has_surrogate(value):
            return path
        if isinstance(value, dict):
            children: Any = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        for key, child in children:
            child_path = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _has_surrogate(key):
                return child_path
            stack.append((child_path, child))
    return None


def json_problem(body: bytes) -> JsonProblem | None:
    """What makes ``body`` ambiguous or unstorable; ``None`` when fine or not JSON at all."""
    try:
        document = json.loads(body, object_pairs_hook=_unique_pairs)
    except _DuplicateKeyError as duplicate:
        return DuplicateKey(duplicate.key)
    except (ValueError, RecursionError):
        return None  # not JSON (or not UTF-8): FastAPI answers 400 malformed_json
    path = _surrogate_path(document)
    return None if path is None else LoneSurrogate(path)


def _is_json(scope: Scope) -> bool:
    """A body FastAPI would parse as JSON: ``application/json``, ``*+json``, or untyped."""
    if scope["method"] not in _BODY_METHODS:
        return False
    raw: bytes | None = dict(scope["headers"]).get(b"content-type")
    if raw is None:
        return True
    media = raw.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _refusal(problem: JsonProblem) -> JSONResponse:
    if isinstance(problem, DuplicateKey):
        key = printable(problem.key)
        detail = {"field": key, "problem": "the key appears more than once in one object"}
        return error_response(
            422, "duplicate_key", f"the key {key!r} appears more than once", [detail]
        )
    field = printable(problem.field)
    detail = {
        "field": field,
        "problem": "lone_surrogate: the text holds a lone surrogate (not a Unicode character)",
        "reason": TextProblem.LONE_SURROGATE.value,
    }
    return invalid_text_response([detail])


class JsonBodyGuard:
    """Pure ASGI middleware: reads a JSON body whole, refuses it or replays it unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        problem = json_problem(body) if body else None
        if problem is not None:
            await _refusal(problem)(scope, receive, send)
            return
        await self.app(scope, _replaying(messages, receive), send)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """Every message up to the body's end (a disconnect ends it early)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


__all__ = ["DuplicateKey", "JsonBodyGuard", "JsonProblem", "LoneSurrogate", "json_problem"]
