"""What the System health page shows, read from Prometheus or from the processes themselves.

:func:`read_health` asks Prometheus's HTTP API (``KEEPER_CONSOLE_PROMETHEUS_URL``) when it
answers; otherwise it scrapes every process's ``/metrics`` (``KEEPER_CONSOLE_METRICS_TARGETS``,
by default the ports ``make run`` uses) and works the same figures out itself, parsed with
prometheus-client's text parser. Either way the page gets one :class:`Health`:

* each component up or down;
* consumer lag per group (from the API's sampler of the broker's end offsets);
* the operator queue's depth and its oldest order's wait (the desk's census);
* create latency p50/p99 over the last 5 minutes (without Prometheus: between this scrape and
  the oldest one kept from the last 5 minutes; the first time, since the API started);
* callbacks pending and dead;
* the last reconciliation: mismatches and when.

No Streamlit here: the page renders, tests call these functions directly.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

#: The components and the variables that place their ``/metrics`` (with ``make run``'s ports).
COMPONENTS: Final = (
    ("api", "KEEPER_API_PORT", 8000),
    ("agents", "KEEPER_AGENTS_WEB_PORT", 6066),
    ("projector", "KEEPER_METRICS_PROJECTOR_PORT", 9401),
    ("card-projector", "KEEPER_METRICS_CARD_PROJECTOR_PORT", 9402),
    ("callbacks", "KEEPER_METRICS_CALLBACKS_PORT", 9403),
    ("reconciler", "KEEPER_METRICS_RECONCILER_PORT", 9404),
)
CREATE: Final = {"method": "POST", "route": "/v1/orders"}
WINDOW_S: Final = 300.0
TIMEOUT_S: Final = 2.0


def default_targets(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    return {
        name: f"http://127.0.0.1:{env.get(variable, default)}/metrics"
        for name, variable, default in COMPONENTS
    }


@dataclass(frozen=True, slots=True)
class GroupLag:
    part: str
    group: str
    lag: int


@dataclass(frozen=True, slots=True)
class Health:
    #: ``prometheus`` or ``scrape``: where the figures come from.
    source: str
    components: dict[str, bool]
    lag: list[GroupLag] = field(default_factory=list)
    queue_depth: int | None = None
    queue_oldest_s: float | None = None
    create_p50_s: float | None = None
    create_p99_s: float | None = None
    #: The span the latency covers (5 min, or less without Prometheus).
    latency_window_s: float | None = None
    callbacks_pending: int | None = None
    callbacks_dead: int | None = None
    reconcile_mismatches: int | None = None
    reconcile_at_s: float | None = None

    @property
    def down(self) -> list[str]:
        return [name for name, up in self.components.items() if not up]


# --- histogram arithmetic ---------------------------------------------------------------------

Buckets = list[tuple[float, float]]


def quantile(q: float, buckets: Buckets) -> float | None:
    """The ``q`` quantile of a cumulative histogram (``(le, count)``, ``+Inf`` last), linearly
    interpolated inside its bucket as Prometheus's ``histogram_quantile`` does; None when
    the histogram is empty."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_le  # beyond the last finite bucket: its bound, as Prometheus
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return lower_le


def create_buckets(samples: Iterable[Sample]) -> Buckets:
    """The create histogram's cumulative buckets, summed over statuses."""
    summed: dict[float, float] = {}
    for s in samples:
        if s.name == "keeper_http_request_duration_seconds_bucket" and all(
            s.labels.get(k) == v for k, v in CREATE.items()
        ):
            le = float(s.labels["le"])
            summed[le] = summed.get(le, 0.0) + s.value
    return sorted(summed.items())


def difference(newer: Buckets, older: Buckets) -> Buckets:
    """``newer - older`` bucket by bucket (a restart in between: ``newer`` alone)."""
    before = dict(older)
    diff = [(le, count - before.get(le, 0.0)) for le, count in newer]
    return newer if any(count < 0 for _, count in diff) else diff


# --- scraping the processes directly ----------------------------------------------------------


def parse(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    found = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else None


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


class ScrapeHistory:
    """The create histogram of recent scrapes, for a latency over (up to) the last 5 min."""

    def __init__(self) -> None:
        self._kept: deque[tuple[float, Buckets]] = deque(maxlen=64)
        self._lock = threading.Lock()

    def window(self, now_s: float, buckets: Buckets) -> tuple[Buckets, float | None]:
        """The buckets since the oldest scrape of the last 5 min (and the span); None for
        the span when there is none yet (the figures then run since the API started)."""
        with self._lock:
            while self._kept and now_s - self._kept[0][0] > WINDOW_S:
                self._kept.popleft()
            oldest = self._kept[0] if self._kept else None
            self._kept.append((now_s, buckets))
        if oldest is None or oldest[0] >= now_s:
            return buckets, None
        return difference(buckets, oldest[1]), now_s - oldest[0]


HISTORY: Final = ScrapeHistory()


def scrape(targets: Mapping[str, str], history: ScrapeHistory = HISTORY) -> Health:
    components: dict[str, bool] = {}
    found: dict[str, list[Sample]] = {}
    with httpx.Client(timeout=TIMEOUT_S) as client:
        for name, url in targets.items():
            try:
                answer = client.get(url)
                answer.raise_for_status()
                found[name] = parse(answer.text)
                components[name] = True
            except (httpx.HTTPError, ValueError):
                components[name] = False
    api, agents = found.get("api", []), found.get("agents", [])
    callbacks, reconciler = found.get("callbacks", []), found.get("reconciler", [])
    buckets, span_s = history.window(time.time(), create_buckets(api))
    oldest = total(agents, "keeper_operator_queue_oldest_age_seconds")
    return Health(
        source="scrape",
        components=components,
        lag=[
            GroupLag(s.labels["part"], s.labels["group"], int(s.value))
            for s in api
            if s.name == "keeper_consumer_group_lag"
        ],
        queue_depth=_int(total(agents, "keeper_operator_queue_depth")),
        queue_oldest_s=oldest,
        create_p50_s=quantile(0.5, buckets),
        create_p99_s=quantile(0.99, buckets),
        latency_window_s=span_s,
        callbacks_pending=_int(
            total(callbacks, "keeper_callback_deliveries_by_status", status="pending")
        ),
        callbacks_dead=_int(
            total(callbacks, "keeper_callback_deliveries_by_status", status="dead")
        ),
        reconcile_mismatches=_int(total(reconciler, "keeper_reconcile_mismatches")),
        reconcile_at_s=total(reconciler, "keeper_reconcile_last_pass_timestamp_seconds") or None,
    )


# --- Prometheus's HTTP API ----------------------------------------------------------------------

QUERIES: Final = {
    "up": 'up{job="keeper"}',
    "lag": "keeper_consumer_group_lag",
    "queue_depth": "sum(keeper_operator_queue_depth)",
    "queue_oldest": "max(keeper_operator_queue_oldest_age_seconds)",
    "p50": 'histogram_quantile(0.5, sum by (le) (rate(keeper_http_request_duration_seconds_bucket{method="POST", route="/v1/orders"}[5m])))',  # noqa: E501
    "p99": 'histogram_quantile(0.99, sum by (le) (rate(keeper_http_request_duration_seconds_bucket{method="POST", route="/v1/orders"}[5m])))',  # noqa: E501
    "callbacks": "sum by (status) (keeper_callback_deliveries_by_status)",
    "mismatches": "sum(keeper_reconcile_mismatches)",
    "reconciled_at": "max(keeper_reconcile_last_pass_timestamp_seconds)",
}


def _number(result: Sequence[Any]) -> float | None:
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


def from_prometheus(url: str, targets: Mapping[str, str]) -> Health:
    """Every figure from Prometheus (raises :class:`httpx.HTTPError` when it does not answer)."""
    results: dict[str, list[Any]] = {}
    with httpx.Client(base_url=url, timeout=TIMEOUT_S) as client:
        for key, query in QUERIES.items():
            answer = client.get("/api/v1/query", params={"query": query})
            answer.raise_for_status()
            results[key] = answer.json()["data"]["result"]
    components = dict.fromkeys(targets, False)
    for row in results["up"]:
        name = row["metric"].get("component", row["metric"].get("instance", "?"))
        components[name] = float(row["value"][1]) == 1.0
    by_status = {
        row["metric"].get("status"): float(row["value"][1]) for row in results["callbacks"]
    }
    return Health(
        source="prometheus",
        components=components,
        lag=[
            GroupLag(
                r["metric"].get("part", "?"),
                r["metric"].get("group", "?"),
                int(float(r["value"][1])),
            )
            for r in results["lag"]
        ],
        queue_depth=_int(_number(results["queue_depth"])),
        queue_oldest_s=_number(results["queue_oldest"]),
        create_p50_s=_number(results["p50"]),
        create_p99_s=_number(results["p99"]),
        latency_window_s=WINDOW_S,
        callbacks_pending=_int(by_status.get("pending")),
        callbacks_dead=_int(by_status.get("dead")),
        reconcile_mismatches=_int(_number(results["mismatches"])),
        reconcile_at_s=_number(results["reconciled_at"]),
    )


def prometheus_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=TIMEOUT_S).status_code == 200
    except httpx.HTTPError:
        return False


def read_health(prometheus_url: str | None, targets: Mapping[str, str]) -> Health:
    """From Prometheus when it answers, else from the processes' ``/metrics``."""
    if prometheus_url and prometheus_answers(prometheus_url):
        try:
            return from_prometheus(prometheus_url, targets)
        except (httpx.HTTPError, KeyError, ValueError):
            pass  # a Prometheus that answers badly: the processes still can
    return scrape(targets)
