"""Run a bench script on the test tier's system: real broker, real database, the agents, the
projector, the API behind uvicorn and headless Chromium, all from ``tests/fixtures``.

A script here is both a command (``python bench/<name>.py``) and a pytest module whose
``bench_*`` functions take the fixtures; :func:`run` starts pytest on the script itself with
the fixture plugins loaded. Nothing here asserts timings: the scripts report them.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PLUGINS = (
    "tests.fixtures.kafka",
    "tests.fixtures.postgres",
    "tests.fixtures.system",
    "tests.fixtures.browser",
)


def run(script: str, env: dict[str, str], timeout_s: int = 3600) -> int:
    """pytest on ``script`` (its ``bench_*`` functions), with ``env`` added to the environment."""
    os.environ.update(env)
    os.chdir(REPO_ROOT)
    args = [script, "-q", "-s", "--no-header", "-p", "no:cacheprovider"]
    for plugin in PLUGINS:
        args += ["-p", plugin]
    args += [
        "-o",
        "python_functions=bench_*",
        "-o",
        f"python_files={Path(script).name}",
        "-o",
        f"timeout={timeout_s}",
    ]
    return int(pytest.main(args))


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    memory = ""
    try:
        found = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        memory = f", {int(found.group(1)) // 1024 // 1024} GiB RAM" if found else ""
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs{memory}; {platform.system()} {platform.release()}"


def chromium_version(executable: str) -> str:
    try:
        out = subprocess.run(  # noqa: S603 - the project's own configured browser path
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def kafka_version() -> str:
    env = REPO_ROOT / "infra" / "kafka" / "versions.env"
    found = re.search(r"^KAFKA_VERSION=(\S+)", env.read_text(), re.MULTILINE)
    return found.group(1) if found else "unknown"


def replace_section(path: Path, marker: str, body: str, title: str) -> None:
    """Write ``body`` between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` in ``path``
    (appended when absent), leaving every other section of the file alone."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else f"# {title}\n\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        after = tail.lstrip("\n")
        text = head + block + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
