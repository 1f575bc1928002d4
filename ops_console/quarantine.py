"""Quarantined records for the console: the open dead letters as a table, and the retry.

No Streamlit here, so tests call these directly. The records belong to
``db.repositories.dead_letters``: read with ``list_open`` / ``count_open`` /
``count_open_by_order``, retried with ``retry`` (which re-publishes the stored record to its
source topic and writes the audit row ``dead_letter.retry`` in the same transaction) and
closed by hand with ``resolve``. A dead letter's raw value never reaches the page (it may
hold card data): only its size.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from db.repositories import dead_letters as repo
from db.repositories.errors import RepositoryError
from ops_console import fmt

LIST_LIMIT: Final = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the page says after an action: ``kind`` is ``success`` or ``error``."""

    kind: str
    message: str


def table(letters: list[repo.DeadLetterView]) -> pd.DataFrame:
    """One row per dead letter, for ``st.dataframe``: where it came from, why, which order."""
    return pd.DataFrame(
        [
            {
                "id": letter.id,
                "seen": fmt.when(letter.first_seen_at),
                "consumer": letter.consumer,
                "source": f"{letter.source_topic}[{letter.source_partition}]"
                f"@{letter.source_offset}",
                "order": str(letter.order_uid) if letter.order_uid else "",
                "reason": letter.reason,
                "bytes": letter.value_bytes,
            }
            for letter in letters
        ],
        columns=["id", "seen", "consumer", "source", "order", "reason", "bytes"],
    )


def flagged_orders(sessions: sessionmaker[Session]) -> dict[uuid.UUID, int]:
    """Orders with open dead letters (they need an operator), and how many each has."""
    with sessions() as session:
        return repo.count_open_by_order(session)


def retry(
    sessions: sessionmaker[Session],
    publisher: Callable[[], repo.Republisher],
    dead_letter_id: int,
    actor: str,
) -> Outcome:
    """Re-publish one dead letter's record to its source topic; a message for every end."""
    try:
        with sessions.begin() as session:
            done = repo.retry(session, publisher(), dead_letter_id, actor)
    except RepositoryError as error:
        return Outcome("error", str(error))
    except Exception as error:  # the broker is away: nothing changed, try again later
        return Outcome(
            "error", f"Not retried: the broker did not take it ({type(error).__name__})."
        )
    return Outcome(
        "success",
        f"Dead letter {done.id} re-published to {done.source_topic}. If its cause is fixed the "
        "record now goes through; if not, it comes back as a new open dead letter.",
    )


def resolve(sessions: sessionmaker[Session], dead_letter_id: int, actor: str) -> Outcome:
    """Close one dead letter by hand: its record is to be left out for good."""
    try:
        with sessions.begin() as session:
            done = repo.resolve(session, dead_letter_id, actor)
    except RepositoryError as error:
        return Outcome("error", str(error))
    return Outcome("success", f"Dead letter {done.id} resolved; its record stays out.")
