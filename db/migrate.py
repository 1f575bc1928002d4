"""Run Alembic migrations from Python or the command line, without an alembic.ini in cwd.

    python -m db.migrate upgrade [REVISION]      # default: head
    python -m db.migrate downgrade REVISION      # e.g. -1, base, 0001
    python -m db.migrate current
    python -m db.migrate upgrade --sql           # print the SQL instead of running it

``--url`` (or the ``url`` argument) overrides ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    if url:
        # The ini parser treats '%' as interpolation; URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head", *, sql: bool = False) -> None:
    command.upgrade(alembic_config(url), revision, sql=sql)


def downgrade(url: str | None = None, revision: str = "base", *, sql: bool = False) -> None:
    command.downgrade(alembic_config(url), revision, sql=sql)


def current(url: str | None = None) -> None:
    command.current(alembic_config(url), verbose=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m db.migrate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", help="database URL (default: DATABASE_URL or the local cluster)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="migrate forward")
    up.add_argument("revision", nargs="?", default="head")
    up.add_argument("--sql", action="store_true", help="print SQL instead of executing it")
    down = commands.add_parser("downgrade", help="migrate backward")
    down.add_argument("revision", help="target revision: -1, base, or a revision id")
    down.add_argument("--sql", action="store_true", help="print SQL instead of executing it")
    commands.add_parser("current", help="show the database's revision")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
    if args.command == "upgrade":
        upgrade(args.url, args.revision, sql=args.sql)
    elif args.command == "downgrade":
        downgrade(args.url, args.revision, sql=args.sql)
    else:
        current(args.url)


if __name__ == "__main__":
    main()
