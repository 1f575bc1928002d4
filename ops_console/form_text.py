"""The text rule of :mod:`domain.text` on the console's forms.

Pages call :func:`refused` with what a form is about to write (or search for) before they
touch the database: each field outside the rule gets its own ``st.error`` naming it, the
same refusal the API gives as ``422 invalid_text``, and nothing is written.
"""

from __future__ import annotations

import streamlit as st

from domain.text import TextRule, text_violation

#: ``(label shown on the form, value, rule)``; a ``None`` value (left out) passes.
Field = tuple[str, str | None, TextRule]


def problems(*fields: Field) -> list[str]:
    """One message per field outside its rule, in the order given."""
    found = []
    for label, value, rule in fields:
        violation = None if value is None else text_violation(value, rule)
        if violation is not None:
            found.append(f"Refused: {label} {violation.describe()} ({violation.problem}).")
    return found


def refused(*fields: Field) -> bool:
    """Show an error for each field outside its rule; ``True`` when there was any."""
    messages = problems(*fields)
    for message in messages:
        st.error(message)
    return bool(messages)
