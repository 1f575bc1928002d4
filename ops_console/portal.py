"""The partner portal's plumbing: whose data a page shows, who acts, and the tables.

A portal page asks :func:`page_scope` for its :class:`~db.repositories.portal.PartnerScope`:
the role check of :func:`ops_console.auth.require`, then the partner the signed-in user is
bound to, read from PostgreSQL on every run (never from the browser). Every read and write
then goes through ``db.repositories.portal`` / ``portal_actions`` with that scope, so the
scoping does not depend on which buttons a page draws.

Button callbacks run before the page's script, so they take :func:`acting_scope` afresh;
:func:`act` does that and the change in one step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any, Final, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from db.repositories import portal, portal_actions
from db.repositories.portal import PartnerScope
from ops_console import auth, changes, fmt, runtime
from ops_console.roles import may_open

T = TypeVar("T")
UNBOUND: Final = "This account is not bound to a partner: ask Keeper's admins."


def page_scope(page: str) -> PartnerScope:
    """The scope of the signed-in partner user; the page stops with a refusal otherwise."""
    who = auth.require(page)
    with runtime.sessions()() as session:
        scope = portal.scope_of(session, who.username)
    if scope is None:
        st.error(UNBOUND)
        st.stop()
    return scope


def acting_scope(page: str) -> PartnerScope | None:
    """For a button callback: the scope of whoever clicks, if they may still open ``page``."""
    who = auth.current_user(touch=False)
    if who is None or not may_open(who.role, page):
        return None  # the run that follows refuses the page
    with runtime.sessions()() as session:
        return portal.scope_of(session, who.username)


def act(page: str, work: Callable[[Session, PartnerScope], T]) -> T | None:
    """For a button callback: ``work(session, scope)`` as whoever clicks, in one committed
    transaction (:func:`ops_console.changes.apply`, which shows a refusal). ``None`` if it
    was refused, or if the user may no longer open ``page`` (the run that follows says so)."""
    acting = acting_scope(page)
    if acting is None:
        return None
    return changes.apply(lambda session: work(session, acting))


def read(work: Callable[..., T], scope: PartnerScope, /, *args: Any, **kwargs: Any) -> T:
    """``work(session, scope, ...)`` in a read-only session."""
    with runtime.sessions()() as session:
        return work(session, scope, *args, **kwargs)


def table(rows: Sequence[Any], row_type: type) -> pd.DataFrame:
    """Dataclass rows as a frame with every field a column (also when there are none)."""
    return pd.DataFrame([asdict(row) for row in rows], columns=[f.name for f in fields(row_type)])


def with_money(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``frame`` with each ``<name>_minor`` column also shown as ``<name>`` in its currency."""
    shown = frame.copy()
    for column in columns:
        shown[column.removesuffix("_minor")] = [
            fmt.money(v, c) for v, c in zip(frame[column], frame["currency"], strict=True)
        ]
    return shown


def show_issued(state_key: str, id_name: str, secret_name: str) -> None:
    """The secret issued on the previous run, shown this once."""
    issued = st.session_state.pop(state_key, None)
    if issued:
        ident, secret = issued
        st.warning("Copy the secret now: it is shown this once and cannot be read back.")
        st.code(f"{id_name}={ident}\n{secret_name}={secret}", language="bash")


def export_button(
    frame: pd.DataFrame,
    *,
    page: str,
    what: str,
    filters: Mapping[str, Any],
    file_name: str,
    key: str,
) -> None:
    """A CSV download of ``frame``; the download is audited (``portal.export``)."""
    st.download_button(
        "Download CSV",
        frame.to_csv(index=False).encode(),
        file_name=file_name,
        mime="text/csv",
        key=key,
        on_click=_record_export,
        args=(page, what, {k: _plain(v) for k, v in filters.items()}, len(frame)),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _record_export(page: str, what: str, filters: dict[str, Any], rows: int) -> None:
    scope = acting_scope(page)
    if scope is None:
        return
    with runtime.sessions().begin() as session:
        portal_actions.record_export(session, scope, what, filters, rows)
