"""Kafka topics of the pipeline: one place for names, keys, partitioning and retention.

Keys decide ordering: every command about the orders of one desk (a card pool, with the
partners working there: ADR 0005) shares a partition of ``order-commands`` (key: desk), and
everything that happened to one order shares a partition of ``order-events`` (key: uid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Cleanup(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    partitions: int = 4
    cleanup: Cleanup = Cleanup.DELETE
    retention_ms: int | None = 7 * 24 * 3600 * 1000
    doc: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Topic-level configs for the admin client."""
        cfg = {"cleanup.policy": self.cleanup.value, **self.extra}
        if self.cleanup is Cleanup.DELETE and self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


ORDER_COMMANDS = TopicSpec("order-commands", key="desk", doc="commands to the order's desk")
ORDER_EVENTS = TopicSpec(
    "order-events",
    key="uid",
    retention_ms=None,  # the event log is the record of what happened: kept
    extra={"retention.ms": "-1"},
    doc="what happened to orders; everything downstream reads it",
)
LEDGER_EVENTS = TopicSpec(
    "ledger-events",
    key="partner_id",
    retention_ms=None,
    extra={"retention.ms": "-1"},
    doc="balanced postings and the balance after each",
)
CONFIG_PARTNERS = TopicSpec(
    "config-partners", key="partner_id", cleanup=Cleanup.COMPACT, partitions=1, doc="partners"
)
CONFIG_CARDS = TopicSpec(
    "config-cards", key="card_id", cleanup=Cleanup.COMPACT, partitions=1, doc="cards and pools"
)
CARD_TURNOVER = TopicSpec(
    "card-turnover", key="card_id", doc="turnover windows (hour, day, month) per card"
)
CARD_ALERTS = TopicSpec(
    "card-alerts",
    key="card_id",
    retention_ms=90 * 24 * 3600 * 1000,  # PostgreSQL keeps them for analysts
    doc="limit shares reached, automatic holidays, expiry",
)
NOTIFICATION_OUTCOMES = TopicSpec(
    "notification-outcomes",
    key="notification_id",
    doc="what the desks decided about bank notifications (matched, suggested, unmatched)",
)
DEAD_LETTERS = TopicSpec("dead-letters", key="source", partitions=1, doc="undecodable messages")

ALL_TOPICS: tuple[TopicSpec, ...] = (
    ORDER_COMMANDS,
    ORDER_EVENTS,
    LEDGER_EVENTS,
    CONFIG_PARTNERS,
    CONFIG_CARDS,
    CARD_TURNOVER,
    CARD_ALERTS,
    NOTIFICATION_OUTCOMES,
    DEAD_LETTERS,
)
