"""The metrics server of the processes without an HTTP server: served on its port, off when
metrics are off, and a taken port costs the metrics, never the process."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from telemetry.exposition import MetricsSettings, serve


def test_serves_the_registry_on_its_port():
    registry = CollectorRegistry()
    Counter("keeper_test_things", "things", registry=registry).inc(3)
    port = serve("projector", MetricsSettings(projector_port=0), registry)
    assert port
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert b"keeper_test_things_total 3.0" in body


def test_off_when_metrics_are_disabled():
    assert serve("callbacks", MetricsSettings(enabled=False, callbacks_port=0)) is None


def test_a_taken_port_leaves_the_process_running_without_metrics():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve("reconciler", MetricsSettings(reconciler_port=port)) is None


def test_a_process_without_a_port_setting_runs_without_metrics():
    assert serve("dispatcher", MetricsSettings()) is None  # type: ignore[arg-type]
