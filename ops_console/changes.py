"""Configuration changes from the admin pages: one transaction through the repositories
(which validate and write the audit row), then the new configuration to the agents.

A refused change (bad input, a stale version, a duplicate) is shown as the repository's own
message and leaves PostgreSQL untouched. Publishing happens after the commit; if the broker
cannot be reached the change stays saved and the page says how to publish it later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import streamlit as st
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.crypto import CardNumberError
from db.repositories.errors import RepositoryError
from ops_console import runtime
from schemas.cards import CardConfigured, PartnerConfigured
from stream_agents.config_publisher import publish_configs_sync

T = TypeVar("T")
NOTICE_KEY = "admin_notice"


def apply(work: Callable[[Session], T]) -> T | None:
    """``work`` in one committed transaction; ``None`` (and the reason shown) if refused."""
    try:
        with runtime.sessions().begin() as session:
            return work(session)
    except (RepositoryError, CardNumberError) as error:
        st.error(f"Refused: {error.message}")
    except IntegrityError:
        st.error("Refused by the database: the change breaks a rule of the stored data.")
    return None


def publish(
    *, partners: Iterable[PartnerConfigured] = (), cards: Iterable[CardConfigured] = ()
) -> str | None:
    """Send the configurations to the agents; a warning to show if that did not happen."""
    settings = runtime.settings()
    if not settings.publish_config:
        return None
    try:
        publish_configs_sync(
            settings.kafka_bootstrap_servers,
            partners=list(partners),
            cards=list(cards),
            topic_prefix=settings.topic_prefix,
            timeout_s=settings.publish_timeout_s,
        )
    except Exception as error:  # any broker failure: the change itself is saved
        return (
            f"Saved, but not yet sent to the agents ({type(error).__name__}); publish it with "
            "`python -m ops_console.admin_cli publish-config`."
        )
    return None


def done(message: str, warning: str | None = None) -> None:
    """Report a saved change on the next run (the page reruns to show fresh data)."""
    st.session_state[NOTICE_KEY] = (message, warning)
    st.rerun()


def show_notice() -> None:
    message, warning = st.session_state.pop(NOTICE_KEY, (None, None))
    if message:
        st.success(message)
    if warning:
        st.warning(warning)
