"""The one text rule: which strings may enter Keeper at all (API, console, CLI).

A string that cannot be stored (PostgreSQL refuses NUL in text; a lone surrogate cannot be
encoded as UTF-8), or that only looks like another one (a decomposed ``é`` beside a composed
one, an id with an invisible mark or a trailing space), is refused where it enters, with a
precise reason, before anything is published or written. Every edge calls :func:`check_text`
with the :class:`TextRule` of the field; nothing here does I/O.

Every rule refuses lone surrogates and control characters (free text keeps tab, line feed
and carriage return). On top of that:

- ``IDENTIFIER`` also refuses format characters, non-NFC strings, blank and padded strings;
- ``LABEL`` (one line of text) and ``FREE_TEXT`` (several lines) refuse non-NFC strings;
- ``SECRET`` refuses nothing more: a password is compared as typed and never shown.

Where:

- control characters are C0 (U+0000-U+001F), DEL (U+007F) and C1 (U+0080-U+009F); where line
  breaks are refused, so are U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR;
- format characters (Unicode category ``Cf``: U+200E/U+200F direction marks, zero-width
  spaces and joiners, bidi overrides, U+FEFF, soft hyphen) are invisible: legitimate in
  right-to-left prose, so allowed in labels and free text, but an id holding one looks
  exactly like another id, so identifiers refuse them;
- ``not_normalized``: the string differs from its NFC form (what it would look like);
  secrets are exempt, being compared as typed and never shown;
- ``blank``: empty or only whitespace; ``padded``: leading or trailing whitespace (Python's
  ``str.isspace``, so U+00A0 and U+3000 count).

Characters outside the Basic Multilingual Plane (emoji, 4-byte UTF-8) are ordinary text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from domain.errors import DomainError

#: Line breaks a free-text field may hold.
_LINE_BREAKS: Final = frozenset("\t\n\r")
#: Unicode's own line and paragraph separators: line breaks where those are refused.
_SEPARATORS: Final = frozenset("\u2028\u2029")


class TextProblem(StrEnum):
    """Why a string is refused; stable values, published in the API's error details."""

    LONE_SURROGATE = "lone_surrogate"
    CONTROL_CHARACTER = "control_character"
    FORMAT_CHARACTER = "format_character"
    NOT_NORMALIZED = "not_normalized"
    BLANK = "blank"
    PADDED = "padded"


_EXPLAINED: Final = {
    TextProblem.LONE_SURROGATE: "holds a lone surrogate (not a Unicode character)",
    TextProblem.CONTROL_CHARACTER: "holds a control character",
    TextProblem.FORMAT_CHARACTER: "holds an invisible format character",
    TextProblem.NOT_NORMALIZED: "is not in Unicode normal form NFC",
    TextProblem.BLANK: "is empty or only whitespace",
    TextProblem.PADDED: "has leading or trailing whitespace",
}


@dataclass(frozen=True, slots=True)
class TextRule:
    """What one kind of field accepts (see the module's table)."""

    name: str
    line_breaks: bool = False
    format_characters: bool = True
    normalized: bool = True
    identifier: bool = False


#: Ids and names a machine matches on: partner order ids, usernames, partner/pool/key ids.
IDENTIFIER: Final = TextRule("identifier", format_characters=False, identifier=True)
#: One line of human text: a partner's name, a bank, a card holder, a URL.
LABEL: Final = TextRule("label")
#: Prose that may span lines: an operator's decision reason.
FREE_TEXT: Final = TextRule("free_text", line_breaks=True)
#: Passwords and card numbers: storable, typed as they are.
SECRET: Final = TextRule("secret", normalized=False)


@dataclass(frozen=True, slots=True)
class TextViolation:
    """The first problem found; ``position`` is the offending character's index, if any."""

    problem: TextProblem
    position: int | None = None

    def describe(self) -> str:
        where = "" if self.position is None else f" at position {self.position}"
        return f"{_EXPLAINED[self.problem]}{where}"


class InvalidText(DomainError):  # noqa: N818 - the domain's vocabulary, as in errors.py
    """A string outside the text rule; ``field`` and ``problem`` say which and why."""

    code = "invalid_text"

    def __init__(self, field: str, violation: TextViolation) -> None:
        super().__init__(f"{field} {violation.describe()}")
        self.field = field
        self.problem = violation.problem
        self.position = violation.position


def _is_control(char: str) -> bool:
    point = ord(char)
    return point < 0x20 or 0x7F <= point <= 0x9F


def _character_problem(char: str, rule: TextRule) -> TextProblem | None:
    if "\ud800" <= char <= "\udfff":
        return TextProblem.LONE_SURROGATE
    if char in _LINE_BREAKS or char in _SEPARATORS:
        return None if rule.line_breaks else TextProblem.CONTROL_CHARACTER
    if _is_control(char):
        return TextProblem.CONTROL_CHARACTER
    if not rule.format_characters and unicodedata.category(char) == "Cf":
        return TextProblem.FORMAT_CHARACTER
    return None


def text_violation(value: str, rule: TextRule) -> TextViolation | None:
    """The first problem of ``value`` under ``rule``, or ``None`` when it is acceptable."""
    for position, char in enumerate(value):
        problem = _character_problem(char, rule)
        if problem is not None:
            return TextViolation(problem, position)
    if rule.normalized and not unicodedata.is_normalized("NFC", value):
        return TextViolation(TextProblem.NOT_NORMALIZED)
    if rule.identifier and not value.strip():
        return TextViolation(TextProblem.BLANK)
    if rule.identifier and value != value.strip():
        return TextViolation(TextProblem.PADDED)
    return None


def check_text(field: str, value: str, rule: TextRule) -> str:
    """``value`` if it follows ``rule``, else :class:`InvalidText` naming ``field``."""
    violation = text_violation(value, rule)
    if violation is not None:
        raise InvalidText(field, violation)
    return value


def check_optional_text(field: str, value: str | None, rule: TextRule) -> str | None:
    """As :func:`check_text`; ``None`` passes through (an optional field left out)."""
    return None if value is None else check_text(field, value, rule)


__all__ = [
    "FREE_TEXT",
    "IDENTIFIER",
    "LABEL",
    "SECRET",
    "InvalidText",
    "TextProblem",
    "TextRule",
    "TextViolation",
    "check_optional_text",
    "check_text",
    "text_violation",
]
