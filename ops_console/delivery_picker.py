"""The "one delivery" picker both delivery pages share: a listed delivery, or one typed by its
id (``Keeper-Delivery-Id``). Staff and partner pages differ only in what they may read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import streamlit as st

from db.repositories.callbacks import DeliveryView
from ops_console import deliveries


def pick_delivery(found: Sequence[DeliveryView], key: str) -> uuid.UUID | None:
    """The delivery id chosen on the page (widgets keyed ``<key>_pick``, ``<key>_pick_id``);
    ``None`` until one is. A malformed id stops the page with its error."""
    st.subheader("One delivery")
    labels = {str(view.delivery_id): deliveries.label(view) for view in found}
    picks = st.columns(2)
    picked = picks[0].selectbox(
        "Open a listed delivery",
        ["", *labels],
        format_func=lambda ident: labels.get(ident, "—"),
        key=f"{key}_pick",
    )
    typed = picks[1].text_input("…or a delivery id (Keeper-Delivery-Id)", key=f"{key}_pick_id")
    try:
        return deliveries.parse_uuid(typed, "A delivery id") or (
            uuid.UUID(picked) if picked else None
        )
    except ValueError as error:
        st.error(str(error))
        st.stop()
