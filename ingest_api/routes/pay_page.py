"""The payer's payment form: the page at ``/pay/{uid}``, its assets, and its live status.

The page is rendered by the server in the payer's language with the order's state in
data-attributes; ``/v1/pay/{uid}/events`` then pushes each status change as a Server-Sent
Event named ``status`` (the public status only: see :class:`~ingest_api.payform.feed.
PayerUpdate`). Where the push is unavailable (no feed in this process, too many watchers, a
proxy that buffers) the page polls ``GET /v1/pay/{uid}`` instead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Cookie, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event

from domain.orders import TERMINAL
from ingest_api.deps import ServicesDep
from ingest_api.errors import ApiError
from ingest_api.orders_common import parse_uid
from ingest_api.payform import page
from ingest_api.payform.feed import FeedFullError, OrderFeed, PayerUpdate, Subscription, newest
from ingest_api.payform.i18n import COOKIE, negotiate, supported
from ingest_api.payform.state import current, page_state

router = APIRouter(tags=["payer"])

#: Seconds between keep-alive comments on an idle stream.
PING_S = 15.0
#: A stream ends after this long and the browser reconnects at once: no connection is held
#: forever (proxies, and a server that is shutting down, both prefer it).
STREAM_LIFETIME_S = 60.0
#: What EventSource waits before reconnecting (ms).
RETRY_MS = 1000
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600


def _now_ms() -> int:
    return int(time.time() * 1000)


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=dict(page.PAGE_HEADERS))


@router.get("/pay/static/{name}", include_in_schema=False)
async def pay_asset(name: str) -> Response:
    if name not in page.ASSETS:
        raise ApiError(404, "not_found", "no such file")
    return Response(
        page.asset(name),
        media_type=page.ASSETS[name],
        headers={
            "Cache-Control": "public, max-age=86400",  # URLs carry ?v=<digest>
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/pay/{uid}",
    response_class=HTMLResponse,
    summary="The payment form (HTML, Russian or English)",
    responses={
        404: {"description": "No such order: a friendly page", "content": {"text/html": {}}}
    },
)
async def pay_page(
    uid: str,
    request: Request,
    services: ServicesDep,
    lang: Annotated[str | None, Query(max_length=16)] = None,
    keeper_lang: Annotated[str | None, Cookie(alias=COOKIE)] = None,
) -> HTMLResponse:
    chosen = negotiate(request.headers.get("accept-language"), requested=lang, cookie=keeper_lang)
    try:
        order_id = parse_uid(uid)
    except ApiError:
        return _remember(_html(page.render_not_found(chosen), 404), lang)
    now_ms = _now_ms()
    state = await page_state(services, order_id, now_ms)
    if state is None:
        return _remember(_html(page.render_not_found(chosen), 404), lang)
    return _remember(_html(page.render_page(state, chosen, now_ms)), lang)


def _remember(response: HTMLResponse, requested: str | None) -> HTMLResponse:
    """Keep the payer's explicit language choice for the next page they open."""
    lang = supported(requested)
    if lang is not None:
        response.set_cookie(
            COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE_S, path="/pay", samesite="lax", httponly=True
        )
    return response


@router.get(
    "/v1/pay/{uid}/events",
    response_model=None,
    summary="The order's status, live (Server-Sent Events)",
    description=(
        "A `status` event with the order's public status now, then one for each change, until "
        "the order is final. Each event's `id` is the order's version. `503` when this process "
        "cannot push (the page then polls `GET /v1/pay/{uid}`)."
    ),
    responses={
        200: {"description": "The event stream", "content": {"text/event-stream": {}}},
        404: {"description": "No such order"},
        503: {"description": "No live feed"},
    },
)
async def pay_events(uid: str, services: ServicesDep) -> EventSourceResponse:
    order_id = parse_uid(uid)
    feed = services.feed
    if feed is None or not feed.live:
        raise ApiError(503, "feed_unavailable", "live status is unavailable; poll instead")
    try:
        subscription = feed.open(order_id)  # before reading: a change meanwhile is not lost
    except FeedFullError:
        raise ApiError(503, "feed_full", "too many live pages; poll instead") from None
    try:
        order = await current(services, order_id)
    except BaseException:
        feed.close(subscription)
        raise
    if order is None:
        feed.close(subscription)
        raise ApiError(404, "order_not_found", "no such order")
    return EventSourceResponse(
        _stream(feed, subscription, order),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def status_event(update: PayerUpdate) -> bytes:
    return format_sse_event(
        event="status", id=str(update.version), data_str=update.model_dump_json()
    )


async def _stream(
    feed: OrderFeed, subscription: Subscription, first: PayerUpdate
) -> AsyncIterator[bytes]:
    try:
        update = newest(first, subscription.latest) or first
        yield format_sse_event(comment="keeper order status", retry=RETRY_MS)
        yield status_event(update)
        sent = update.version
        deadline = time.monotonic() + STREAM_LIFETIME_S
        while update.status not in TERMINAL:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            found = await subscription.next(sent, min(PING_S, remaining))
            if found is None:
                yield KEEPALIVE_COMMENT
                continue
            update = found
            yield status_event(update)
            sent = update.version
    finally:
        feed.close(subscription)
