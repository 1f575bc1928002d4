"""System health: is every part up, how far behind each consumer is, how long the operator
queue and partners wait, callbacks in trouble, the last reconciliation. Read from Prometheus
when it runs (``make observe``), else from each process's ``/metrics``
(:mod:`ops_console.health`). Operators and admins."""

from __future__ import annotations

import time
from typing import Final

import pandas as pd
import streamlit as st

from ops_console import auth, health, runtime
from ops_console.roles import page_title

PAGE: Final = "health"

auth.require(PAGE)
st.title(page_title(PAGE))
settings = runtime.settings()
targets = settings.metrics_targets or health.default_targets()
with st.spinner("Reading the metrics"):
    found = health.read_health(settings.prometheus_url, targets)

if found.source == "prometheus":
    st.caption(f"From Prometheus at {settings.prometheus_url} (alerts: /alerts there).")
else:
    st.caption("Prometheus is not running (`make observe`): read from each process's /metrics.")

if found.down:
    st.error("Down: " + ", ".join(found.down))
else:
    st.success("Every component answers.")
st.dataframe(
    pd.DataFrame(
        [{"component": n, "state": "up" if up else "DOWN"} for n, up in found.components.items()]
    ),
    hide_index=True,
    width="stretch",
)


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def count(value: int | None) -> str:
    return "-" if value is None else str(value)


st.subheader("Operator queue and latency")
cols = st.columns(4)
cols[0].metric("Queue depth", count(found.queue_depth))
oldest = found.queue_oldest_s
cols[1].metric("Oldest waiting", "-" if oldest is None else f"{oldest / 60:.1f} min")
cols[2].metric("Create p50", ms(found.create_p50_s))
cols[3].metric("Create p99", ms(found.create_p99_s))
if found.latency_window_s is None:
    st.caption("Latency since the API started (the next reading covers the time in between).")
elif found.create_p99_s is None:
    st.caption(f"No create request in the last {found.latency_window_s / 60:.1f} min.")
else:
    st.caption(f"Latency over the last {found.latency_window_s / 60:.1f} min.")

st.subheader("Consumer lag")
if found.lag:
    st.dataframe(
        pd.DataFrame([{"part": g.part, "group": g.group, "lag": g.lag} for g in found.lag]),
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No lag reading (the API samples the broker for it).")

st.subheader("Callbacks and reconciliation")
cols = st.columns(4)
cols[0].metric("Callbacks pending", count(found.callbacks_pending))
cols[1].metric("Callbacks dead", count(found.callbacks_dead))
cols[2].metric("Reconciliation mismatches", count(found.reconcile_mismatches))
at = found.reconcile_at_s
cols[3].metric(
    "Last reconciliation", "-" if not at else time.strftime("%H:%M:%S", time.localtime(at))
)
if found.callbacks_dead:
    st.warning("Dead callbacks: resend them from the Callback deliveries page.")
if found.reconcile_mismatches:
    st.error("Reconciliation found mismatches: run `make reconcile` (docs/operations.md).")
