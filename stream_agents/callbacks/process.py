"""The callbacks process: intake and sender side by side, plus the ``resend`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import uuid

import httpx
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from db.crypto import SecretBox
from db.engine import make_engine, session_factory
from db.repositories import callbacks as repo
from db.repositories.errors import RepositoryError
from stream_agents import metrics
from stream_agents.callbacks.intake import run_intake
from stream_agents.callbacks.sender import Sender
from stream_agents.callbacks.settings import CallbackSettings
from stream_agents.failures import ConsumerHaltedError
from stream_agents.process import configure_logging, make_producer, run_process
from stream_agents.quarantine import DeadLetters

log = logging.getLogger("stream_agents.callbacks")


def callbacks_engine(settings: CallbackSettings) -> Engine:
    return make_engine(
        settings.database_url,
        hide_parameters=True,
        pool_size=2 + settings.send_batch // 4,
        max_overflow=settings.send_batch,
        connect_args={"connect_timeout": settings.db_connect_timeout_s},
    )


async def run_callbacks(
    settings: CallbackSettings,
    stop: asyncio.Event,
    *,
    box: SecretBox | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Run intake and sender until ``stop`` is set; the first to fail stops both.

    Cancelling is a crash as far as the data is concerned: recorded deliveries whose offsets
    were not committed are recorded again as no-ops, and claimed deliveries are taken up
    again when their lease runs out.
    """
    box = box or SecretBox.from_settings()
    engine = callbacks_engine(settings)
    metrics.CALLBACKS_ENGINE.engine = engine  # deliveries pending and dead, read when scraped
    sessions = session_factory(engine)
    producer = make_producer(settings)
    client = httpx.AsyncClient(transport=transport, follow_redirects=False)
    try:
        await producer.start()
        sender = Sender(settings, sessions, box, client, producer)
        letters = DeadLetters(producer, settings.dead_letters_topic, settings.consumer_group)
        tasks = [
            asyncio.create_task(
                run_intake(settings, sessions, letters, stop), name="callbacks-intake"
            ),
            asyncio.create_task(sender.run(stop), name="callbacks-sender"),
        ]
        log.info(
            "callbacks %s: %s -> %s, sending (dead letters: %s)",
            settings.consumer_group,
            settings.order_events_topic,
            make_url(settings.database_url).render_as_string(hide_password=True),
            settings.dead_letters_topic,
        )
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raise the failure that ended the wait
        except asyncio.CancelledError:
            for task in tasks:  # a crash: nothing gets to finish what it was doing
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            stop.set()
            for task in tasks:
                if not task.done():
                    with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                        await asyncio.wait_for(task, settings.http_timeout_s + 5)
    finally:
        await client.aclose()
        await producer.stop()
        engine.dispose()
        log.info("callbacks stopped")


def resend_command(settings: CallbackSettings, delivery_id: str, actor: str) -> int:
    engine = make_engine(settings.database_url, hide_parameters=True)
    try:
        with session_factory(engine).begin() as session:
            view = repo.resend(session, delivery_id, actor, window_s=settings.retry_window_s)
        print(f"callback {view.delivery_id} ({view.event_type}, {view.partner_id}) is pending")
        return 0
    except RepositoryError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stream_agents.callbacks", description="Keeper partner callbacks"
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="consume order-events and send callbacks (the default)")
    again = commands.add_parser("resend", help="make a finished delivery pending again")
    again.add_argument("delivery_id", type=uuid.UUID)
    again.add_argument("--actor", default="cli", help="who resends (for the audit log)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """``python -m stream_agents.callbacks [run | resend <delivery_id> [--actor NAME]]``."""
    args = parse(argv)
    configure_logging()
    settings = CallbackSettings()
    if args.command == "resend":
        raise SystemExit(resend_command(settings, str(args.delivery_id), args.actor))
    run_process("callbacks", run_callbacks, settings, halted=ConsumerHaltedError, log=log)
