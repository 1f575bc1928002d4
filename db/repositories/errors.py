"""What a repository refuses, with stable codes the API and the CLI can map and print.

Messages name the entity and the rule, never a secret or a card number.
"""

# Names describe the refusal ("not found", "already exists"), like domain/errors.py.
# ruff: noqa: N818

from __future__ import annotations

from typing import ClassVar


class RepositoryError(Exception):
    """Base of every refusal raised by a repository."""

    code: ClassVar[str] = "repository_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RepositoryError):
    code = "not_found"


class AlreadyExists(RepositoryError):
    code = "already_exists"


class DuplicateCard(AlreadyExists):
    """The same card number is already registered (possibly in another pool)."""

    code = "duplicate_card"


class InvalidInput(RepositoryError):
    """A value breaks a rule the database would refuse anyway; refused early and clearly."""

    code = "invalid_input"


class StaleVersion(RepositoryError):
    """Someone changed the row since the caller read it (optimistic lock)."""

    code = "stale_version"

    def __init__(self, entity: str, entity_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{entity} {entity_id} is at version {actual}, not {expected}: reload and retry"
        )
        self.expected = expected
        self.actual = actual


class PartnerBusy(RepositoryError):
    """The change would move a partner's money or open orders to another desk (ADR 0005)."""

    code = "partner_busy"


__all__ = [
    "AlreadyExists",
    "DuplicateCard",
    "InvalidInput",
    "NotFound",
    "PartnerBusy",
    "RepositoryError",
    "StaleVersion",
]
