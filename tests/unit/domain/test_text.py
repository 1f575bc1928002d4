"""The one text rule (domain/text.py): each class of bad string, for each kind of field."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.text import (
    FREE_TEXT,
    IDENTIFIER,
    LABEL,
    SECRET,
    InvalidText,
    TextProblem,
    TextRule,
    check_optional_text,
    check_text,
    text_violation,
)

RULES = (IDENTIFIER, LABEL, FREE_TEXT, SECRET)
CONTROL = TextProblem.CONTROL_CHARACTER
SURROGATE = TextProblem.LONE_SURROGATE
NFC = TextProblem.NOT_NORMALIZED
FORMAT = TextProblem.FORMAT_CHARACTER
BLANK = TextProblem.BLANK
PADDED = TextProblem.PADDED
OK = None

DECOMPOSED_E = "e\u0301"  # "é" as e + COMBINING ACUTE ACCENT (NFD)
RLM = "\u200f"  # RIGHT-TO-LEFT MARK
EMOJI = "\U0001f600"  # 4 bytes in UTF-8, a surrogate pair in UTF-16: ordinary text

#: value -> expected problem under (IDENTIFIER, LABEL, FREE_TEXT, SECRET)
CASES = {
    "a\x00b": (CONTROL, CONTROL, CONTROL, CONTROL),
    "a\x01b": (CONTROL, CONTROL, CONTROL, CONTROL),
    "a\x1fb": (CONTROL, CONTROL, CONTROL, CONTROL),
    "a\x7fb": (CONTROL, CONTROL, CONTROL, CONTROL),  # DEL
    "a\x85b": (CONTROL, CONTROL, CONTROL, CONTROL),  # NEL, a C1 control
    "a\x9fb": (CONTROL, CONTROL, CONTROL, CONTROL),
    "a\ud800b": (SURROGATE, SURROGATE, SURROGATE, SURROGATE),
    "ab\udfff": (SURROGATE, SURROGATE, SURROGATE, SURROGATE),
    f"caf{DECOMPOSED_E}": (NFC, NFC, NFC, OK),
    "   ": (BLANK, OK, OK, OK),
    "": (BLANK, OK, OK, OK),
    " id": (PADDED, OK, OK, OK),
    "id\u00a0": (PADDED, OK, OK, OK),  # NO-BREAK SPACE is whitespace too
    "a\tb": (CONTROL, CONTROL, OK, CONTROL),
    "line\nbreak\r\n": (CONTROL, CONTROL, OK, CONTROL),
    "a\u2028b": (CONTROL, CONTROL, OK, CONTROL),  # LINE SEPARATOR
    f"{RLM}abc": (FORMAT, OK, OK, OK),
    "a\u200bb": (FORMAT, OK, OK, OK),  # ZERO WIDTH SPACE
    "a\u202eb": (FORMAT, OK, OK, OK),  # RIGHT-TO-LEFT OVERRIDE
    "\ufeffid": (FORMAT, OK, OK, OK),  # BYTE ORDER MARK
    f"pay {EMOJI}": (OK, OK, OK, OK),
    "café": (OK, OK, OK, OK),  # composed: NFC already
    "inv-1001": (OK, OK, OK, OK),
    "מזהה": (OK, OK, OK, OK),  # Hebrew letters are letters
    "order 7": (OK, OK, OK, OK),  # inner whitespace is fine
}


@pytest.mark.parametrize(("value", "expected"), list(CASES.items()), ids=ascii)
def test_each_rule_finds_the_documented_problem(
    value: str, expected: tuple[TextProblem | None, ...]
) -> None:
    found = tuple(
        violation.problem if (violation := text_violation(value, rule)) else None for rule in RULES
    )
    assert found == expected


@pytest.mark.parametrize(
    ("value", "position"),
    [("a\x00b", 1), ("\ud800", 0), ("abc\x7f", 3), (f"ab{RLM}", 2)],
    ids=ascii,
)
def test_a_character_problem_names_its_position(value: str, position: int) -> None:
    violation = text_violation(value, IDENTIFIER)
    assert violation is not None
    assert violation.position == position
    assert f"at position {position}" in violation.describe()


def test_the_first_problem_wins_in_string_order() -> None:
    violation = text_violation(" a\x00\ud800", IDENTIFIER)
    assert violation is not None
    assert (violation.problem, violation.position) == (CONTROL, 2)


def test_check_text_raises_a_domain_error_naming_field_and_reason() -> None:
    with pytest.raises(InvalidText) as refused:
        check_text("partner_order_id", "a\x00b", IDENTIFIER)
    error = refused.value
    assert error.code == "invalid_text"
    assert (error.field, error.problem, error.position) == ("partner_order_id", CONTROL, 1)
    assert str(error) == "partner_order_id holds a control character at position 1"
    assert "\x00" not in str(error)


def test_check_text_returns_an_accepted_value_unchanged() -> None:
    assert check_text("name", f"Caf\u00e9 {EMOJI}", LABEL) == f"Caf\u00e9 {EMOJI}"
    assert check_optional_text("description", None, LABEL) is None
    with pytest.raises(InvalidText):
        check_optional_text("description", "\x00", LABEL)


def test_problem_values_are_the_published_reasons() -> None:
    assert {problem.value for problem in TextProblem} == {
        "lone_surrogate",
        "control_character",
        "format_character",
        "not_normalized",
        "blank",
        "padded",
    }


@given(st.text())
def test_an_accepted_label_can_be_stored_and_looks_like_itself(value: str) -> None:
    """Anything the rule accepts encodes as UTF-8 (PostgreSQL takes it), holds no NUL, and is
    its own NFC form; anything else is refused, never raised about."""
    if text_violation(value, LABEL) is None:
        value.encode("utf-8")
        assert "\x00" not in value
        assert unicodedata.normalize("NFC", value) == value


@given(st.text(), st.sampled_from(RULES))
def test_identifier_is_the_strictest_rule(value: str, rule: TextRule) -> None:
    if text_violation(value, IDENTIFIER) is None and rule is not SECRET:
        assert text_violation(value, rule) is None
