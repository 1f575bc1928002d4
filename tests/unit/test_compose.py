"""docker-compose.yml stays runnable: valid for the compose client, and every app service runs
a module that exists in this repository."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

import pytest

from tests.fixtures.services import REPO_ROOT, unavailable

COMPOSE = REPO_ROOT / "docker-compose.yml"


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


def test_compose_client_accepts_the_file():
    command = compose_command()
    if command is None:
        unavailable("docker compose client", "not installed (infra/deps.sh installs one)")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", ["db.migrate", "ingest_api.app", "stream_agents.topology"])
def test_compose_commands_name_real_modules(module: str):
    assert f'"{module}' in COMPOSE.read_text() or f"{module}:" in COMPOSE.read_text()
    assert importlib.util.find_spec(module) is not None
