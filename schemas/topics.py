"""Kafka topics of the pipeline: one place for names, keys, partitioning and retention.

Keys decide ordering: everything about one order shares a partition of ``order-commands``
and ``order-events`` (key: uid), everything about one partner's money shares a partition of
``partner-ledger`` (key: partner id), card assignment is serialised per pool (key: pool id).
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


ORDER_COMMANDS = TopicSpec("order-commands", key="uid", doc="commands to the order agent")
ORDER_EVENTS = TopicSpec(
    "order-events",
    key="uid",
    retention_ms=None,  # the event log is the record of what happened: kept
    extra={"retention.ms": "-1"},
    doc="what happened to orders; everything downstream reads it",
)
PARTNER_LEDGER = TopicSpec("partner-ledger", key="partner_id", doc="balance operations")
LEDGER_EVENTS = TopicSpec(
    "ledger-events",
    key="partner_id",
    retention_ms=None,
    extra={"retention.ms": "-1"},
    doc="balanced postings and the balance after each",
)
CARD_POOL = TopicSpec("card-pool", key="pool_id", doc="card assignment requests")
CONFIG_PARTNERS = TopicSpec(
    "config-partners", key="partner_id", cleanup=Cleanup.COMPACT, partitions=1, doc="partners"
)
CONFIG_CARDS = TopicSpec(
    "config-cards", key="card_id", cleanup=Cleanup.COMPACT, partitions=1, doc="cards and pools"
)
CARD_MOVEMENTS = TopicSpec(
    "card-movements", key="card_id", doc="approved deposits re-keyed by card, for the monitor"
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
DEAD_LETTERS = TopicSpec("dead-letters", key="source", partitions=1, doc="undecodable messages")

ALL_TOPICS: tuple[TopicSpec, ...] = (
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PARTNER_LEDGER,
    LEDGER_EVENTS,
    CARD_POOL,
    CONFIG_PARTNERS,
    CONFIG_CARDS,
    CARD_MOVEMENTS,
    CARD_TURNOVER,
    CARD_ALERTS,
    DEAD_LETTERS,
)
