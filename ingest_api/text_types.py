"""The text rule of :mod:`domain.text` as pydantic types, for every string of every request.

``Identifier``, ``Label``, ``FreeText`` and ``Secret`` are ``str`` with the rule of the same
name checked *before* pydantic's own string checks, so a NUL or a lone surrogate is reported
as what it is (not as a length or a pattern mismatch). A violation is a validation error of
type ``invalid_text`` whose context carries the ``reason`` (a
:class:`~domain.text.TextProblem` value); :mod:`ingest_api.errors` turns it into a ``422``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from domain.text import FREE_TEXT, IDENTIFIER, LABEL, SECRET, TextRule, text_violation

#: The validation error type of a text-rule violation.
INVALID_TEXT = "invalid_text"


def text_validator(rule: TextRule) -> Callable[[Any], Any]:
    """A before-validator: a ``str`` outside ``rule`` is refused; anything else is left to
    the type's own validation (a number where text belongs is still ``string_type``)."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            violation = text_violation(value, rule)
            if violation is not None:
                raise PydanticCustomError(
                    INVALID_TEXT,
                    "{reason}: the text {description}",
                    {"reason": violation.problem.value, "description": violation.describe()},
                )
        return value

    return check


Identifier = Annotated[str, BeforeValidator(text_validator(IDENTIFIER))]
Label = Annotated[str, BeforeValidator(text_validator(LABEL))]
FreeText = Annotated[str, BeforeValidator(text_validator(FREE_TEXT))]
Secret = Annotated[str, BeforeValidator(text_validator(SECRET))]

__all__ = ["INVALID_TEXT", "FreeText", "Identifier", "Label", "Secret", "text_validator"]
