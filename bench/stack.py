"""The benchmark's private Keeper: its own broker and PostgreSQL on free ports, state under
``.local/bench/<name>``, and Keeper's processes under ``infra/keeper.sh`` exactly as
``make run`` starts them, so a run disturbs neither the shared services nor anyone's tests.

The harness knows Keeper only from the outside: the HTTP API, the topic names in
``schemas/topics.py``, the process names ``infra/keeper.sh`` writes pid files for, and the
PostgreSQL tables an approved order ends up in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from bench._harness import kafka_version
from bench.lives import Desk
from bench.proc import cpu_seconds, cpu_tree
from tests.fixtures.services import run_infra
from tests.fixtures.stack import free_port, metrics_ports, seed

REPO_ROOT = Path(__file__).resolve().parents[1]
OPERATORS = ("op1", "op2", "op3", "op4")
PASSWORD = "bench operator password"  # noqa: S105 - a throwaway private stack
CARDS_PER_DESK = 8
BROKER, POSTGRES, GENERATOR = "kafka broker", "postgresql", "load generator"


def luhn_pan(prefix: str, index: int) -> str:
    body = f"{prefix}{index:09d}"[:15]
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return body + str((10 - total % 10) % 10)


@dataclass
class BenchStack:
    name: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:8]}")
    env: dict[str, str] = field(default_factory=dict)
    desks: int = 0

    def __post_init__(self) -> None:
        self.root = REPO_ROOT / ".local" / "bench" / self.name
        pg_port, api_port, kafka_port = free_port(), free_port(), free_port()
        base = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "KEEPER_TOPIC_PREFIX"}
        }
        self.bootstrap = f"127.0.0.1:{kafka_port}"
        self.database_url = f"postgresql+psycopg2://keeper:keeper@127.0.0.1:{pg_port}/keeper"
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.env = {
            **base,
            "KEEPER_STATE": str(self.root),
            "KEEPER_PG_PORT": str(pg_port),
            "KEEPER_API_PORT": str(api_port),
            "KEEPER_AGENTS_WEB_PORT": str(free_port()),
            **metrics_ports(),
            "KAFKA_PORT": str(kafka_port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KEEPER_WITHOUT": "console reconciler",
            "KEEPER_PUBLIC_BASE_URL": self.api_url,
        }

    def sh(self, *args: str, timeout_s: float = 300) -> str:
        done = run_infra(*args, env=self.env, timeout_s=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def up(self) -> None:
        self.root.mkdir(parents=True)
        self.sh("infra/kafka/kafka.sh", "up")
        self.sh("infra/postgres/pg.sh", "up")
        self.env.update(KAFKA_BOOTSTRAP_SERVERS=self.bootstrap, DATABASE_URL=self.database_url)
        self.sh(".venv/bin/python", "-m", "db.migrate", "upgrade")
        self.sh(".venv/bin/python", "-m", "stream_agents.topology")
        self.new_desk()  # the first seeding also signs the operators up
        self.sh("infra/keeper.sh", "up")

    def new_desk(self) -> Desk:
        """A partner with its own pool of cards and key: a phase starts from fresh state (no
        open orders of an earlier phase on its cards or its balance)."""
        os.environ.update(self.env)  # db.crypto reads its key from the settings
        self.desks += 1
        partner = f"bench{self.desks}"
        key_id, secret = seed(
            self.database_url,
            self.bootstrap,
            partner=partner,
            pool=f"{partner}-pool",
            pans=[luhn_pan("4000", self.desks * 1000 + i) for i in range(CARDS_PER_DESK)],
            operators=OPERATORS if self.desks == 1 else (),
            password=PASSWORD,
            actor="bench",
        )
        return Desk(partner, key_id, secret)

    def stop_keeper(self) -> None:
        """Stop Keeper's processes (not the broker, not PostgreSQL) for the baselines. Killed
        outright: their graceful stops take longer than a baseline phase, and this stack is
        thrown away afterwards."""
        for name, pid in self.pids().items():
            if name not in (BROKER, POSTGRES):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        run_infra("infra/keeper.sh", "down", env=self.env, timeout_s=120)  # tidies pid files

    def down(self) -> None:
        for script in ("infra/keeper.sh", "infra/kafka/kafka.sh", "infra/postgres/pg.sh"):
            run_infra(script, "down", env=self.env, timeout_s=120)
        # Keep the components' logs of the last run (for a look after the fact), drop the rest.
        last = self.root.parent / "last-logs"
        shutil.rmtree(last, ignore_errors=True)
        if (self.root / "logs").exists():
            shutil.move(str(self.root / "logs"), str(last))
        shutil.rmtree(self.root, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        """Keeper's processes by their ``infra/keeper.sh`` names, the broker and PostgreSQL."""
        found = {p.stem: int(p.read_text()) for p in sorted((self.root / "run").glob("*.pid"))}
        kafka = self.root / "kafka" / "kafka.pid"
        if kafka.exists():
            found[BROKER] = int(kafka.read_text().split()[0])
        for pg in (self.root / "pg").glob("**/postmaster.pid"):
            found[POSTGRES] = int(pg.read_text().split()[0])
        return found

    def cpu(self) -> dict[str, float | None]:
        """CPU seconds so far of every process (all of PostgreSQL's backends included)."""
        found = {
            name: cpu_tree(pid) if name == POSTGRES else cpu_seconds(pid)
            for name, pid in self.pids().items()
        }
        found[GENERATOR] = cpu_seconds(os.getpid())
        return found

    def versions(self) -> dict[str, str]:
        import aiokafka
        import fastapi
        import faust
        import uvicorn

        pg = "unknown"
        try:
            engine = create_engine(self.database_url)
            with engine.connect() as conn:
                pg = str(conn.execute(text("SHOW server_version")).scalar_one())
            engine.dispose()
        except Exception:  # noqa: S110 - informational only
            pass
        return {
            "python": sys.version.split()[0],
            "kafka": kafka_version(),
            "postgresql": pg,
            "faust-streaming": faust.__version__,
            "aiokafka": aiokafka.__version__,
            "fastapi": fastapi.__version__,
            "uvicorn": uvicorn.__version__,
        }


@contextlib.contextmanager
def null_api() -> Iterator[tuple[str, int]]:
    """Baseline (c)'s app under uvicorn, as Keeper's API runs (no access log); yields
    ``(url, pid)``."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603 - our own uvicorn and module
        [
            str(REPO_ROOT / ".venv" / "bin" / "uvicorn"),
            "bench.null_api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
