"""A partner's API key as a value: what the API verifies a signature with.

Pure and shared: :mod:`db.repositories.api_keys` builds it from a stored row (unsealing the
secret), :mod:`ingest_api.key_ring` keeps it in memory and :mod:`ingest_api.signing` checks
requests against it. It lives in the core so that the database layer need not import the API
to hand one over.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ApiKey:
    """One API key of a partner. A partner may hold several; each has exactly one secret."""

    partner_id: str
    secret: bytes = field(repr=False)
    active: bool = True

    def __post_init__(self) -> None:
        if not self.secret:  # an empty HMAC key would make every signature guessable
            raise ValueError("an API key's secret must not be empty")
