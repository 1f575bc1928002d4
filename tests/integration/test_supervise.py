"""infra/supervise.sh restarts a component that dies, records it, and stops it on TERM.

A dummy component (``sleep``) stands in for the real ones: the supervisor does not care what
it runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SUPERVISE = REPO_ROOT / "infra" / "supervise.sh"


def eventually(probe: Callable[[], object], what: str, timeout_s: float = 10.0) -> object:
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    run, logs = tmp_path / "run", tmp_path / "logs"
    env = {
        **os.environ,
        "RUN": str(run),
        "LOGS": str(logs),
        "KEEPER_RESTART_FIRST_S": "1",
        "KEEPER_RESTART_STABLE_S": "30",
    }
    process = subprocess.Popen([str(SUPERVISE), "dummy", "sleep 300"], env=env)
    try:
        yield process, run, logs
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        child = read_pid(run / "dummy.pid")
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_killed_component_is_restarted_with_back_off_and_recorded(supervised):
    process, run, logs = supervised
    first = eventually(lambda: read_pid(run / "dummy.pid"), "the first start")
    assert isinstance(first, int)
    assert read_pid(run / "supervise" / "dummy.pid") == process.pid

    os.kill(first, signal.SIGKILL)
    second = eventually(
        lambda: (pid := read_pid(run / "dummy.pid")) != first and pid and alive(pid) and pid,
        "the restart",
    )
    assert isinstance(second, int)
    assert alive(second)

    [line] = (run / "restarts.log").read_text().splitlines()
    assert " component=dummy exit=137 (signal 9) " in line
    assert "restart=1 backoff_s=1" in line
    assert "supervisor: dummy exited with status 137 (signal 9)" in (logs / "dummy.log").read_text()

    os.kill(second, signal.SIGKILL)  # within the stable time: the back-off doubles
    eventually(
        lambda: len((run / "restarts.log").read_text().splitlines()) == 2, "the second restart"
    )
    assert "restart=2 backoff_s=2" in (run / "restarts.log").read_text().splitlines()[1]


def test_term_stops_the_component_and_the_supervisor(supervised):
    process, run, _ = supervised
    child = eventually(lambda: read_pid(run / "dummy.pid"), "the first start")
    assert isinstance(child, int)

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=15) == 0
    assert not alive(child)
    assert not (run / "dummy.pid").exists()
    assert not (run / "supervise" / "dummy.pid").exists()
    assert not (run / "restarts.log").exists()  # a requested stop is not a restart
