"""Admission: a bounded number of requests in flight, the rest shed at once with ``503``.

Above capacity a request that waits is worse than one refused: it holds a connection and
memory, and by the time it runs its caller has given up. So the process admits at most
``max_in_flight`` requests at a time and answers any further one immediately with
``503 overloaded`` and ``Retry-After``; nothing queues inside the API. Health probes and
the payment form's event streams are not counted (a probe must answer under load, and an
open stream is a long-lived subscription, not work).

The same middleware gives every request an id (``X-Request-Id``: the caller's, when it is a
short token, else a new one), returns it, and logs it with every ``5xx`` answer and every
unhandled error -- the only per-request log line once uvicorn's access log is off.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest_api import metrics
from ingest_api.errors import error_response
from telemetry import logs

log = logging.getLogger(__name__)

REQUEST_ID_HEADER: Final = "X-Request-Id"
_REQUEST_ID_RE: Final = re.compile(rb"[A-Za-z0-9._-]{1,64}")
#: Paths never shed: the probes, and the payment form's live stream.
EXEMPT_PATHS: Final = frozenset({"/healthz", "/readyz"})

#: The id of the request being handled, for log lines written below the middleware.
request_id: ContextVar[str] = ContextVar("request_id", default="-")


def _exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or (path.startswith("/v1/pay/") and path.endswith("/events"))


def _incoming_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID_RE.fullmatch(value):
            return bytes(value).decode("ascii")
    return uuid.uuid4().hex


class Admission:
    """Pure ASGI middleware; ``in_flight`` is read by tests and by ``/metrics``."""

    def __init__(self, app: ASGIApp, max_in_flight: int, retry_after_s: int = 1) -> None:
        if max_in_flight <= 0 or retry_after_s <= 0:
            raise ValueError("max_in_flight and retry_after_s must be positive")
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self.shed = 0
        refusal = error_response(
            503,
            "overloaded",
            f"the API is at capacity ({max_in_flight} requests in flight); "
            f"retry after {retry_after_s} s",
        )
        self._shed_body = bytes(refusal.body)
        self._shed_headers = [
            *refusal.raw_headers,
            (b"retry-after", str(retry_after_s).encode("ascii")),
        ]
        metrics.COLLECTOR.admission = self  # requests in flight, read when scraped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope)
        token = request_id.set(rid)
        try:
            with logs.bound(request_id=rid):  # every line the request logs carries its id
                if _exempt(scope["path"]):
                    await self._handle(scope, receive, send, rid)
                elif self.in_flight >= self.max_in_flight:
                    await self._shed(scope, receive, send, rid)
                else:
                    self.in_flight += 1
                    try:
                        await self._handle(scope, receive, send, rid)
                    finally:
                        self.in_flight -= 1
        finally:
            request_id.reset(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request %s: %s %s failed", rid, scope["method"], scope["path"])
            raise
        if status >= 500:
            log.warning(
                "request %s: %s %s answered %d", rid, scope["method"], scope["path"], status
            )

    async def _shed(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        """The refusal is rendered once, at start: shedding must cost next to nothing, or a
        flood of refusals becomes the overload."""
        self.shed += 1
        metrics.SHED.inc()
        headers = [*self._shed_headers, (b"x-request-id", rid.encode("ascii"))]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": self._shed_body})


__all__ = ["EXEMPT_PATHS", "REQUEST_ID_HEADER", "Admission", "request_id"]
