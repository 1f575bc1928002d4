"""Security headers on every answer, and the API docs pages with a CSP of their own.

:class:`SecurityHeaders` (pure ASGI) adds, unless the route set them itself (the payment
form sets its own, CSP included):

* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
  ``X-Frame-Options: DENY`` on every answer;
* ``Cache-Control: no-store`` on every ``/v1/...`` answer: a session token, a card number or
  a balance may be in the body, and one rule for the whole prefix cannot forget an endpoint.

The docs (``/docs``, ``/redoc``) are FastAPI's own pages served with a restrictive CSP: the
Swagger UI and ReDoc bundles from their CDN path only, the one inline script by its hash,
requests to this origin only, no framing. The *browser* fetches those bundles; without
internet access the pages stay blank and ``/openapi.json`` is the documentation.
``KEEPER_API_DOCS_PUBLIC=false`` (the default in production) removes all three.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EVERY_ANSWER: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
NO_STORE_PREFIX: Final = "/v1/"

SWAGGER_CDN: Final = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/"
REDOC_CDN: Final = "https://cdn.jsdelivr.net/npm/redoc@2/"
FAVICON: Final = "https://fastapi.tiangolo.com/img/favicon.png"
_INLINE_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_COMMON_CSP: Final = (
    "default-src 'none'",
    f"img-src 'self' data: {FAVICON}",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = str(scope.get("path", "")).startswith(NO_STORE_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in EVERY_ANSWER.items():
                    headers.setdefault(name, value)
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def script_hashes(html: str) -> list[str]:
    """CSP sources (``'sha256-...'``) for the page's inline scripts."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def swagger_csp(html: str) -> str:
    scripts = " ".join([SWAGGER_CDN, *script_hashes(html)])
    return "; ".join(
        [f"script-src {scripts}", f"style-src {SWAGGER_CDN} 'unsafe-inline'", *_COMMON_CSP]
    )


def redoc_csp() -> str:
    return "; ".join(
        [
            f"script-src {REDOC_CDN}",
            "style-src 'unsafe-inline' https://fonts.googleapis.com",
            "font-src https://fonts.gstatic.com",
            "worker-src blob:",
            *_COMMON_CSP,
        ]
    )


def _with_csp(page: HTMLResponse, csp: str) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = csp
    return page


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the docs pages with their CSP (the app is built with ``docs_url=None``)."""
    assert app.openapi_url, "the docs need the OpenAPI document"
    openapi_url = app.openapi_url
    title = app.title

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=SWAGGER_CDN + "swagger-ui-bundle.js",
            swagger_css_url=SWAGGER_CDN + "swagger-ui.css",
            swagger_favicon_url=FAVICON,
        )
        return _with_csp(page, swagger_csp(bytes(page.body).decode()))

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=REDOC_CDN + "bundles/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
        )
        return _with_csp(page, redoc_csp())

    app.add_route(docs_url, swagger, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)


__all__ = ["SecurityHeaders", "install_docs", "redoc_csp", "script_hashes", "swagger_csp"]
