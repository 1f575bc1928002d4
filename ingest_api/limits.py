"""Refuse oversized request bodies before anything reads them.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is refused at once; a
chunked body is counted as it streams and cut off when it passes the limit, so a client
cannot make the server buffer an unbounded body.

Within the limit, a JSON body then passes :class:`~ingest_api.json_body.JsonBodyGuard`
(duplicate keys, lone surrogates): installing this one middleware installs both, in the
order that keeps the guard from ever buffering more than the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest_api.errors import error_response
from ingest_api.json_body import JsonBodyGuard


class BodyTooLargeError(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app: ASGIApp = JsonBodyGuard(app)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._refuse(scope, receive, send)
            return

        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large", f"request body exceeds {self.max_body_bytes} bytes"
        )
        await response(scope, receive, send)
