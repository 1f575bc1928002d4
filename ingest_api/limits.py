"""Refuse oversized request bodies before anything reads them.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is refused at once; a
chunked body is counted as it streams and cut off when it passes the limit, so a client
cannot make the server buffer an unbounded body.

Receipt uploads (:data:`UPLOAD_PATH`, a dispute's receipt of up to 5 MiB) get a larger limit
of their own, and their refusal says ``receipt_too_large``.

Within the limit, a JSON body then passes :class:`~ingest_api.json_body.JsonBodyGuard`
(duplicate keys, lone surrogates): installing this one middleware installs both, in the
order that keeps the guard from ever buffering more than the limit.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.disputes import MAX_RECEIPT_BYTES
from ingest_api.errors import error_response
from ingest_api.json_body import JsonBodyGuard

#: The endpoints that take a receipt (multipart): the partner's and the payer's dispute.
UPLOAD_PATH: Final = re.compile(r"^/v1/(orders/[^/]+/disputes|pay/[^/]+/dispute)$")
#: A receipt, its comment and the multipart framing around them.
UPLOAD_MAX_BYTES: Final = MAX_RECEIPT_BYTES + 16 * 1024


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
        upload = UPLOAD_PATH.match(scope["path"]) is not None
        limit = UPLOAD_MAX_BYTES if upload else self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, upload)
            return

        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
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
                await self._refuse(scope, receive, send, upload)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, upload: bool) -> None:
        if upload:
            response = error_response(
                413, "receipt_too_large", f"a receipt may have at most {MAX_RECEIPT_BYTES} bytes"
            )
        else:
            response = error_response(
                413, "body_too_large", f"request body exceeds {self.max_body_bytes} bytes"
            )
        await response(scope, receive, send)
