"""The API's Prometheus metrics and its ``/metrics`` endpoint (docs/operations.md lists them).

* :class:`RequestMetrics`, the outermost ASGI middleware: every request counted and timed by
  method, **route template** (``/v1/orders/{uid}``, never the uid itself) and status; paths no
  route matches share the label ``unmatched``, so a scan of random URLs adds no series;
* refusals by reason: a signature refused (``AuthError.code``), a partner over its rate (by
  partner), a request shed above capacity (:mod:`ingest_api.admission`);
* :class:`ApiCollector`, read at scrape time, so it costs nothing per request: requests in
  flight, open payment-form event streams, and the lag of every consumer group of the
  pipeline per partition, from the samples the API already takes for ``/readyz``
  (:class:`~ingest_api.pipeline_health.PipelineMonitor`).

Label values are bounded: routes, methods, status codes, reasons, partner ids, group ids,
topics and partitions. Order ids and card numbers never become a label.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest_api.rate_limit import RateLimitedError
from ingest_api.signing import AuthError
from telemetry.exposition import MetricsSettings

#: Request latency buckets (seconds): the create target sits at 0.1-0.25 s p99.
LATENCY_BUCKETS_S: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
UNMATCHED: Final = "unmatched"

REQUESTS = Counter(
    "keeper_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "keeper_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the body; event streams: their lifetime)",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS_S,
)
SIGNATURE_FAILURES = Counter(
    "keeper_api_signature_failures",
    "Partner requests refused by the signature check, by reason (the error code)",
    ["reason"],
)
RATE_LIMITED = Counter(
    "keeper_api_rate_limited",
    "Partner requests refused with 429 rate_limited, by partner",
    ["partner"],
)
SHED = Counter(
    "keeper_api_shed",
    "Requests refused with 503 overloaded at once because the process was at capacity",
)


def route_of(scope: Scope) -> str:
    """The template of the route that served ``scope`` (``unmatched`` when none did)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetrics:
    """Counts and times every HTTP request (pure ASGI; the outermost middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler answers 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            labels = (scope["method"], route_of(scope), str(status))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - started)


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def _counting(handler: Handler, count: Callable[[Exception], None]) -> Handler:
    async def counted(request: Request, exc: Exception) -> Response:
        count(exc)
        answer = handler(request, exc)
        return await answer if isinstance(answer, Awaitable) else answer

    return counted


def _auth_failure(exc: Exception) -> None:
    assert isinstance(exc, AuthError)
    SIGNATURE_FAILURES.labels(exc.code).inc()


def _rate_limited(exc: Exception) -> None:
    assert isinstance(exc, RateLimitedError)
    RATE_LIMITED.labels(exc.partner_id).inc()


class ApiCollector(Collector):
    """What the API knows without counting per request, read when scraped: the services of
    the process's running app (:func:`watch`)."""

    def __init__(self) -> None:
        self.services: Any = None
        #: The admission middleware (:mod:`ingest_api.admission`) of the running app.
        self.admission: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        services = self.services
        in_flight = GaugeMetricFamily(
            "keeper_api_requests_in_flight", "Requests being handled now (sheds above capacity)"
        )
        in_flight.add_metric([], getattr(self.admission, "in_flight", 0))
        yield in_flight
        streams = GaugeMetricFamily(
            "keeper_api_sse_streams_open", "Payment-form event streams open now"
        )
        feed = getattr(services, "feed", None)
        streams.add_metric([], feed.subscriber_count if feed is not None else 0)
        yield streams
        yield from lag_families(getattr(services, "pipeline", None))


def lag_families(monitor: Any) -> Iterator[GaugeMetricFamily]:
    """Consumer lag per group and partition (and per group, with the group's members), from
    the pipeline monitor's newest samples: committed offsets against the broker's end
    offsets, for the agents' group as for the projector's, card projector's and callbacks'."""
    lag = GaugeMetricFamily(
        "keeper_consumer_lag",
        "Records in a partition not yet committed by the group (end offset - committed)",
        labels=["part", "group", "topic", "partition"],
    )
    group_lag = GaugeMetricFamily(
        "keeper_consumer_group_lag",
        "Records the group has not yet committed, over all the partitions it reads",
        labels=["part", "group"],
    )
    members = GaugeMetricFamily(
        "keeper_consumer_group_members", "Active members of the group", labels=["part", "group"]
    )
    sampled = GaugeMetricFamily(
        "keeper_consumer_lag_sampled_timestamp_seconds",
        "When the lag was last read from the broker (unix seconds)",
    )
    newest = 0.0
    for sample in monitor.latest() if monitor is not None else []:
        for (topic, partition), value in sorted(sample.partition_lag.items()):
            lag.add_metric([sample.label, sample.group_id, topic, str(partition)], value)
        group_lag.add_metric([sample.label, sample.group_id], sample.lag)
        if sample.members is not None:
            members.add_metric([sample.label, sample.group_id], sample.members)
        newest = max(newest, sample.at_s)
    sampled.add_metric([], newest)
    yield from (lag, group_lag, members, sampled)


def install(app: FastAPI, settings: MetricsSettings | None = None) -> None:
    """Count requests and refusals, and serve ``GET /metrics`` (not in the OpenAPI schema:
    it is for Prometheus, on the same port as the API, so only the addresses of
    ``KEEPER_METRICS_ALLOW`` may read it; anyone else gets ``404``). Call after the error
    handlers are installed and after every other middleware (this one must be the
    outermost)."""
    settings = settings or MetricsSettings()
    if not settings.enabled:
        return
    app.add_middleware(RequestMetrics)
    handlers = app.exception_handlers
    handlers[AuthError] = _counting(handlers[AuthError], _auth_failure)
    handlers[RateLimitedError] = _counting(handlers[RateLimitedError], _rate_limited)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not settings.allowed(request.client.host if request.client else None):
            raise StarletteHTTPException(404)  # answered as any unknown path is
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


COLLECTOR: Final = ApiCollector()
REGISTRY.register(COLLECTOR)


def watch(services: Any) -> None:
    """Export the state of ``services`` (the running app's; None: nothing) when scraped."""
    COLLECTOR.services = services


__all__ = [
    "RATE_LIMITED",
    "SHED",
    "SIGNATURE_FAILURES",
    "ApiCollector",
    "install",
    "route_of",
    "watch",
]
