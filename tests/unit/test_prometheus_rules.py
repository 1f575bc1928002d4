"""The Prometheus config and alert rules are valid for ``promtool``, and every alert fires on
the series that should raise it (``infra/prometheus/rules.test.yml``). CI has promtool from
Debian's ``prometheus`` (infra/deps.sh); elsewhere a missing promtool skips, under CI fails."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.fixtures.services import REPO_ROOT, unavailable

PROMETHEUS = REPO_ROOT / "infra" / "prometheus"


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        unavailable("promtool", "not installed (infra/deps.sh installs Debian's prometheus)")
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_rules():
    done = promtool("check", "rules", "rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_config_with_its_compose_targets(tmp_path: Path):
    for name in ("prometheus.yml", "rules.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    shutil.copytree(PROMETHEUS / "compose-targets", tmp_path / "targets")
    done = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr


def test_every_alert_fires_where_it_should():
    done = promtool("test", "rules", "rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_and_has_a_runbook_line():
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    alerts = [r["alert"] for group in rules["groups"] for r in group["rules"]]
    tested = (PROMETHEUS / "rules.test.yml").read_text()
    operations = (REPO_ROOT / "docs" / "operations.md").read_text()
    assert len(alerts) == 7
    for alert in alerts:
        assert f"alertname: {alert}" in tested, alert
        assert f"### {alert}" in operations, alert


def test_compose_targets_name_every_component_with_its_default_port():
    targets = json.loads((PROMETHEUS / "compose-targets" / "keeper.json").read_text())
    components = {t["labels"]["component"] for t in targets}
    assert components == {"api", "agents", "projector", "card-projector", "callbacks", "reconciler"}
    script = (PROMETHEUS / "prometheus.sh").read_text()
    for target in targets:
        port = target["targets"][0].split(":")[1]
        assert re.search(rf"[:-]{port}\}}", script) or port in script, target
