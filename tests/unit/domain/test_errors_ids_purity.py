"""Error codes are stable, order uids are deterministic UUIDv8s, and the core is pure."""

from __future__ import annotations

import ast
import hashlib
import hmac
import re
import sys
import uuid
from pathlib import Path

import pytest

import domain
from domain import bank_messages  # noqa: F401 - its refusals are published codes too
from domain.errors import DomainError, IllegalTransition, InsufficientFunds, NoEligibleCard
from domain.ids import order_uid

SECRET = b"0123456789abcdef"
DOMAIN_DIR = Path(domain.__file__).parent


def _all_errors() -> list[type[DomainError]]:
    found, todo = [], [DomainError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_error_codes_are_published_and_unique() -> None:
    codes = [cls.code for cls in _all_errors()]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", code) for code in codes)
    # Codes are an API: changing one is a breaking change, so this list changes on purpose.
    assert set(codes) == {
        "domain_error",
        "order_not_disputable",
        "dispute_exists",
        "dispute_resolved",
        "invalid_receipt",
        "receipt_too_large",
        "receipt_type",
        "text_too_long",
        "reason_required",
        "invalid_amount",
        "invalid_fee",
        "invalid_currency",
        "unknown_currency",
        "invalid_command",
        "invalid_template",
        "invalid_amount_format",
        "invalid_amount_precision",
        "unknown_bank_currency",
        "invalid_payer_card",
        "payer_card_required",
        "illegal_transition",
        "direction_mismatch",
        "not_yet_expired",
        "deadline_passed",
        "order_not_found",
        "order_mismatch",
        "order_conflict",
        "insufficient_funds",
        "insufficient_held",
        "invalid_card",
        "no_eligible_card",
        "invalid_text",
    }


def test_errors_carry_their_context() -> None:
    err = IllegalTransition("approved", "rejected", "RejectOrder")
    assert (err.status, err.target, err.command) == ("approved", "rejected", "RejectOrder")
    assert "approved" in err.message
    funds = InsufficientFunds(available_minor=5, required_minor=7)
    assert (funds.available_minor, funds.required_minor) == (5, 7)
    assert NoEligibleCard({"c1": "blocked"}).reasons == {"c1": "blocked"}


def test_order_uid_is_a_deterministic_uuid8() -> None:
    uid = order_uid(SECRET, "acme", "inv-1001")
    assert uid == order_uid(SECRET, "acme", "inv-1001")
    parsed = uuid.UUID(uid)
    assert str(parsed) == uid  # canonical lowercase form
    assert parsed.version == 8
    assert parsed.variant == uuid.RFC_4122


def test_order_uid_matches_its_specification() -> None:
    # Recomputed independently: HMAC-SHA256 over length-prefixed context, partner, order.
    def field(raw: bytes) -> bytes:
        return len(raw).to_bytes(4, "big") + raw

    message = field(b"keeper/order-uid/v1") + field(b"acme") + field("счёт-7".encode())
    raw = bytearray(hmac.new(SECRET, message, hashlib.sha256).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    assert order_uid(SECRET, "acme", "счёт-7") == str(uuid.UUID(bytes=bytes(raw)))


def test_order_uid_pinned_value() -> None:
    """Changing the encoding would orphan every stored uid: this value must never change."""
    assert order_uid(SECRET, "acme", "inv-1001") == "a6a9d0e2-8a26-8153-9f48-571b1805dc92"


@pytest.mark.parametrize(
    ("secret", "partner_id", "partner_order_id"),
    [
        (b"fedcba9876543210", "acme", "inv-1001"),  # another secret
        (SECRET, "acme2", "inv-1001"),  # another partner
        (SECRET, "acme", "inv-1002"),  # another order
        (SECRET, "acmei", "nv-1001"),  # same concatenation, other split
        (SECRET, "acme", "inv-1001 "),
    ],
)
def test_order_uid_differs(secret: bytes, partner_id: str, partner_order_id: str) -> None:
    assert order_uid(secret, partner_id, partner_order_id) != order_uid(SECRET, "acme", "inv-1001")


@pytest.mark.parametrize(
    ("secret", "partner_id", "partner_order_id"),
    [(b"short", "acme", "x"), (SECRET, "", "x"), (SECRET, "acme", "")],
)
def test_order_uid_refuses_bad_inputs(
    secret: bytes, partner_id: str, partner_order_id: str
) -> None:
    with pytest.raises(ValueError, match="must"):
        order_uid(secret, partner_id, partner_order_id)


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(DOMAIN_DIR.glob("*.py")), ids=lambda p: p.name)
def test_domain_imports_only_the_standard_library(path: Path) -> None:
    allowed = set(sys.stdlib_module_names) | {"domain", "__future__"}
    assert _imported_roots(path) <= allowed


def test_package_exports_exist() -> None:
    assert all(hasattr(domain, name) for name in domain.__all__)
