"""The card projector: ``card-turnover`` and ``card-alerts`` into PostgreSQL, plus expiry.

``python -m stream_agents.card_projector`` runs one member of the consumer group
``keeper-card-projector``. Like the order projector (:mod:`stream_agents.projector`, whose
settings it reuses) it is the one batch loop of :mod:`stream_agents.batch_consumer`: it
writes a polled batch through :func:`stream_agents.quarantine.settle` (one transaction when
it can; a record refused for good, such as an unknown card, is isolated and dead-lettered
and the rest written) and commits the offsets only afterwards, so
at-least-once delivery plus idempotent writes (:mod:`db.repositories.turnover`) give
exactly-once effects:

* window updates are versioned upserts into ``card_turnover``;
* alerts are recorded once per id in ``card_alerts``; a ``holiday_started`` alert also
  extends ``cards.holiday_until`` (audited, by ``system:card-monitor``): the pool agent
  already stopped handing the card out when the monitor sent it ``card.pause``.

It also writes what the desks decided about bank notifications (``notification-outcomes``,
:func:`db.repositories.notifications.settle`: once per notification, an approval audited with
the device as actor), and every ``device_sweep_interval_s`` reports to each card's desk the
devices unheard for longer than ``device_silent_after_s`` (``device.health``, ADR 0010): the
desk stops handing their cards out until the API hears them again.

Every ``expiry_sweep_interval_s`` it also sweeps the cards (:func:`sweep_expiry`): cards
expiring within ``expiry_horizon_days`` get an ``expiring_soon`` alert, expired ones are
retired and their configuration republished to ``config-cards`` (the pool agent never
handed them out anyway: eligibility compares ``expires_on`` with today).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import schemas  # noqa: F401 - registers every schema with the registry
from db.repositories import devices as devices_repo
from db.repositories import notifications as notifications_repo
from db.repositories import turnover as repo
from schemas.notifications import DeviceHealth, NotificationSettled
from schemas.registry import encode
from schemas.topics import CARD_ALERTS, CARD_TURNOVER, NOTIFICATION_OUTCOMES, ORDER_COMMANDS
from schemas.translation import epoch_ms
from schemas.turnover import CardAlerted, TurnoverUpdated, TurnoverWindows
from stream_agents import metrics
from stream_agents.batch_consumer import BatchConsumer, Step
from stream_agents.config_publisher import publish_configs
from stream_agents.failures import ConsumerHaltedError
from stream_agents.process import make_consumer, make_producer, run_process, running
from stream_agents.projector import ProjectorSettings, projector_engine
from stream_agents.quarantine import DeadLetters, Record, decode_record
from stream_agents.wire import epoch_ms_now

log = logging.getLogger(__name__)

CardItem = TurnoverUpdated | CardAlerted | NotificationSettled


class CardProjectorSettings(ProjectorSettings):
    """The order projector's settings, under ``KEEPER_CARD_PROJECTOR_``, plus expiry."""

    model_config = SettingsConfigDict(env_prefix="KEEPER_CARD_PROJECTOR_")

    group_id: str = "keeper-card-projector"
    #: Time zone of "today" for expiry (the same as the agents' ``card_time_zone``).
    card_time_zone: str = Field(
        "UTC",
        validation_alias=AliasChoices(
            "KEEPER_CARD_PROJECTOR_CARD_TIME_ZONE", "KEEPER_AGENTS_CARD_TIME_ZONE"
        ),
    )
    expiry_horizon_days: int = Field(30, ge=0, le=3660)
    #: How often expiry is swept; 0 switches the sweep off.
    expiry_sweep_interval_s: float = Field(3600.0, ge=0)
    #: A device unheard for longer than this takes its card out of rotation (ADR 0010);
    #: checked every ``device_sweep_interval_s`` (0 switches the check off).
    device_silent_after_s: float = Field(600.0, gt=0)
    device_sweep_interval_s: float = Field(30.0, ge=0)

    @property
    def turnover_topic(self) -> str:
        return self.topic_prefix + CARD_TURNOVER.name

    @property
    def alerts_topic(self) -> str:
        return self.topic_prefix + CARD_ALERTS.name

    @property
    def outcomes_topic(self) -> str:
        return self.topic_prefix + NOTIFICATION_OUTCOMES.name

    @property
    def commands_topic(self) -> str:
        return self.topic_prefix + ORDER_COMMANDS.name


def classify(record: Record, alerts_topic: str) -> list[CardItem] | str:
    """Window updates, an alert or a notification outcome, or why ``record`` is rejected."""
    decoded = decode_record(record)
    if isinstance(decoded, str):
        return decoded
    env, message = decoded
    if isinstance(message, NotificationSettled):
        return [message]
    if record.topic == alerts_topic:
        if isinstance(message, CardAlerted):
            return [message]
    elif isinstance(message, TurnoverUpdated):
        return [message]
    elif isinstance(message, TurnoverWindows):
        return list(message.windows)
    return f"unexpected message type {env.type!r}"


def rank(item: CardItem) -> int:
    """Windows, alerts, then notification outcomes (in one transaction, as they were before
    isolation)."""
    if isinstance(item, TurnoverUpdated):
        return 0
    return 1 if isinstance(item, CardAlerted) else 2


def write_batch(engine: Engine, items: Sequence[CardItem]) -> int:
    """One transaction: windows, alerts, holidays. Returns the rows written."""
    windows = [item for item in items if isinstance(item, TurnoverUpdated)]
    alerts = [item for item in items if isinstance(item, CardAlerted)]
    outcomes = [item for item in items if isinstance(item, NotificationSettled)]
    with Session(engine) as session, session.begin():
        conn = session.connection()
        written = repo.upsert_turnover(conn, windows)
        written += repo.insert_alerts(conn, [repo.alert_row(a) for a in alerts])
        repo.extend_holidays(session, alerts)
        written += notifications_repo.settle(session, outcomes)
    return written


def sweep(engine: Engine, settings: CardProjectorSettings, now_ms: int) -> repo.ExpirySweep:
    tz = ZoneInfo(settings.card_time_zone)
    with Session(engine) as session, session.begin():
        return repo.sweep_expiry(session, now_ms, settings.expiry_horizon_days, tz)


async def sweep_and_publish(engine: Engine, settings: CardProjectorSettings) -> repo.ExpirySweep:
    """Run the expiry sweep, then publish the retired cards' configurations."""
    result = await asyncio.to_thread(sweep, engine, settings, epoch_ms_now())
    if result.retired:
        await publish_configs(
            settings.kafka_bootstrap_servers,
            cards=result.retired,
            topic_prefix=settings.topic_prefix,
        )
    log.info(
        "expiry sweep: %d retired, %d expiring-soon alerts, %d expired alerts",
        len(result.retired),
        result.expiring_alerts,
        result.expired_alerts,
    )
    return result


async def report_silent_devices(
    engine: Engine, producer: AIOKafkaProducer, settings: CardProjectorSettings
) -> int:
    """Tell each card's desk about its devices that fell silent (``device.health``), then
    record that they were told; a failed send leaves them to the next sweep."""
    now = datetime.now(UTC)

    def sweep_devices(session: Session) -> list[devices_repo.SilentDevice]:
        return devices_repo.newly_silent(session, now, settings.device_silent_after_s)

    with Session(engine) as session, session.begin():
        silent = sweep_devices(session)
        sends = []
        for device in silent:
            health = DeviceHealth(
                pool_id=device.pool_id,
                card_id=device.card_id,
                device_id=device.device_id,
                silent=True,
                at_ms=epoch_ms(device.silent_at),
            )
            value = encode(health, message_id=uuid.uuid5(_HEALTH_IDS, f"{device}"))
            key = health.message_key().encode()
            sends.append(await producer.send(settings.commands_topic, key=key, value=value))
        await asyncio.gather(*sends)
        devices_repo.mark_silent(session, silent)
    if silent:
        log.info("device sweep: %d device(s) silent, their cards out of rotation", len(silent))
    return len(silent)


#: Namespace of ``device.health`` message ids (one per device and silence).
_HEALTH_IDS = uuid.UUID("0b7a3f0e-6d6c-4c55-8f0e-5f2d8b1c9a10")


def card_step(engine: Engine, settings: CardProjectorSettings) -> Step[CardItem, int]:
    return Step(
        classify=partial(classify, alerts_topic=settings.alerts_topic),
        write=partial(write_batch, engine),
        nothing=0,
        describe="{} rows".format,
        rank=rank,
    )


@dataclass(slots=True)
class Sweeps:
    """The card projector's periodic work between batches: expiry and silent devices."""

    engine: Engine
    producer: AIOKafkaProducer
    settings: CardProjectorSettings
    next_expiry: float = field(default_factory=time.monotonic)
    next_devices: float = field(default_factory=time.monotonic)

    async def __call__(self) -> None:
        settings = self.settings
        if settings.expiry_sweep_interval_s and time.monotonic() >= self.next_expiry:
            self.next_expiry = time.monotonic() + settings.expiry_sweep_interval_s
            await sweep_and_publish(self.engine, settings)
        if settings.device_sweep_interval_s and time.monotonic() >= self.next_devices:
            self.next_devices = time.monotonic() + settings.device_sweep_interval_s
            await report_silent_devices(self.engine, self.producer, settings)


async def run_card_projector(settings: CardProjectorSettings, stop: asyncio.Event) -> None:
    engine = projector_engine(settings)
    metrics.CARDS_ENGINE.engine = engine  # cards near their limits, read when scraped
    consumer = make_consumer(
        settings, settings.turnover_topic, settings.alerts_topic, settings.outcomes_topic
    )
    producer = make_producer(settings)
    letters = DeadLetters(producer, settings.dead_letters_topic, settings.consumer_group)
    polling = settings.polling("card projector", "card_projector")
    loop = BatchConsumer(consumer, letters, card_step(engine, settings), polling)
    async with running(producer, consumer, engine=engine):
        log.info(
            "card projector %s: %s, %s",
            settings.consumer_group,
            settings.turnover_topic,
            settings.alerts_topic,
        )
        await loop.run(stop, between=Sweeps(engine, producer, settings))


def main() -> None:
    """``python -m stream_agents.card_projector``; exits 2 when halted (a fatal failure)."""
    run_process(
        "card_projector",
        run_card_projector,
        CardProjectorSettings(),
        halted=ConsumerHaltedError,
        log=log,
    )


if __name__ == "__main__":
    main()
