"""The System health page with ``AppTest``: without Prometheus it reads each process's
``/metrics`` and shows every figure (a component down named at the top); operators and
admins may open it, analysts may not."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures.console import Console, sign_in
from tests.fixtures.fake_metrics import FakeProcesses, populate
from tests.fixtures.stack import free_port

pytestmark = pytest.mark.integration


def metric(at: AppTest, label: str) -> str:
    [found] = [m for m in at.metric if m.label == label]
    return str(found.value)


@pytest.fixture
def health_page(
    console_light: Console, fake_processes: FakeProcesses, monkeypatch: pytest.MonkeyPatch
) -> Console:
    populate(fake_processes, creates_ms=[20] * 97 + [300] * 3)
    monkeypatch.setenv("KEEPER_CONSOLE_METRICS_TARGETS", json.dumps(fake_processes.targets))
    monkeypatch.setenv("KEEPER_CONSOLE_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    return console_light


def test_the_page_shows_every_figure_from_the_processes(health_page: Console):
    at = sign_in(health_page.app(), "olga")  # an operator
    at.switch_page("views/health.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["System health"]
    assert "Down: reconciler" in [e.value for e in at.error]
    assert any("Prometheus is not running" in c.value for c in at.caption)
    assert metric(at, "Queue depth") == "2"
    assert metric(at, "Oldest waiting") == "3.0 min"
    assert metric(at, "Create p50") == "18 ms"
    assert metric(at, "Create p99") == "417 ms"
    assert metric(at, "Callbacks pending") == "3"
    assert metric(at, "Callbacks dead") == "1"
    assert metric(at, "Reconciliation mismatches") == "-"
    [components, lag] = at.dataframe
    states = dict(zip(components.value["component"], components.value["state"], strict=True))
    assert states == {
        "api": "up",
        "agents": "up",
        "callbacks": "up",
        "projector": "up",
        "card-projector": "up",
        "reconciler": "DOWN",
    }
    assert dict(zip(lag.value["part"], lag.value["lag"], strict=True)) == {
        "projector": 42,
        "agents": 0,
    }
    assert any("resend" in w.value for w in at.warning)


def test_analysts_may_not_open_it(health_page: Console):
    at = sign_in(health_page.app(), "ann")
    at.switch_page("views/health.py").run()
    assert "System health" not in [t.value for t in at.title]
