"""The headers every dead letter carries, whoever wrote it (consumers, agents).

A dead letter's value is the refused record's raw value, untouched; these headers say why it
was refused and where it came from, so it can be stored (``dead_letters``), found and
re-published to its source after a fix. No I/O imports: the Faust agents use it too.
"""

from __future__ import annotations

import re
from typing import Final

ERROR: Final = "keeper.error"
SOURCE_TOPIC: Final = "keeper.source.topic"
SOURCE_PARTITION: Final = "keeper.source.partition"
SOURCE_OFFSET: Final = "keeper.source.offset"
SOURCE_KEY: Final = "keeper.source.key"
CONSUMER: Final = "keeper.consumer"
#: Set by the callback sender on a parked callback (not a refused record).
DELIVERY_ID: Final = "keeper.delivery_id"
#: The header the agents' dead letters carried before ``keeper.error``.
LEGACY_REASON: Final = "reason"

#: C0/C1 controls (NUL included), DEL and lone surrogates: never in a stored or logged reason.
_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
REASON_MAX_CHARS: Final = 1000


def clean(text: str, limit: int = REASON_MAX_CHARS) -> str:
    """``text`` without control characters or lone surrogates, at most ``limit`` chars."""
    return _UNPRINTABLE.sub("?", text)[:limit]


def build(
    reason: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    consumer: str,
) -> list[tuple[str, bytes]]:
    """The headers of one dead letter (the reason cleaned; the key as raw bytes)."""
    return [
        (ERROR, clean(reason).encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (SOURCE_KEY, key or b""),
        (CONSUMER, consumer.encode()),
    ]
