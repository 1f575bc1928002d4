"""Versioned wire schemas of every Keeper message (see :mod:`schemas.envelope`).

Importing this package registers every schema with :mod:`schemas.registry`.
"""

from schemas import cards, disputes, ledger, notifications, orders, turnover
from schemas.envelope import Envelope, Message
from schemas.registry import SchemaError, decode, encode

__all__ = [
    "Envelope",
    "Message",
    "SchemaError",
    "cards",
    "decode",
    "disputes",
    "encode",
    "ledger",
    "notifications",
    "orders",
    "turnover",
]
