"""The navigation: pages a role is offered, and the hidden rest.

Pages a role may not open are still registered, hidden, so a bookmarked address reaches the
page itself, which then refuses (``auth.require``) instead of a bare "page not found".
"""

from __future__ import annotations

import streamlit as st

from ops_console.roles import SECTIONS, may_open

SIGN_IN_PATH = "sign-in"


def pages_for(role: str | None) -> tuple[dict[str, list[st.Page]], list[st.Page]]:
    """(visible pages by section, hidden pages) for ``role`` (``None``: signed out)."""
    offered: dict[str, list[st.Page]] = {}
    hidden: list[st.Page] = []
    for section, pages in SECTIONS.items():
        for key, path, title, icon in pages:
            allowed = may_open(role, key)
            page = st.Page(
                path,
                title=title,
                icon=icon,
                url_path=key,
                visibility="visible" if allowed else "hidden",
            )
            if allowed:
                offered.setdefault(section, []).append(page)
            else:
                hidden.append(page)
    return offered, hidden


def visible_keys(role: str | None) -> list[str]:
    return [key for pages in SECTIONS.values() for key, *_ in pages if may_open(role, key)]
