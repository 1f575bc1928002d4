"""What kind of failure is this? Transient, fatal, or a poison record; and a log-safe account.

The consumers that write PostgreSQL (:mod:`stream_agents.projector`,
:mod:`stream_agents.card_projector`, :mod:`stream_agents.callbacks.intake`) sort every
failure of a write into one of three kinds (docs/reliability.md, "Poison records"):

* **transient** -- a dependency is away (PostgreSQL restarting, a lost connection, a lock
  conflict, the broker): the same write may succeed later, so retry with back-off and hold
  the offsets;
* **fatal** -- the deployment itself is broken (authentication refused, a missing table or
  column: the migrations were not applied, no privilege): every record would fail the same
  way, so quarantining them would bury the whole stream; the process halts instead;
* **permanent** -- everything else (a data error such as a NUL in a string, a constraint or
  foreign-key violation, a value the projection refuses): the *record* can never be written
  as it is; it is isolated and dead-lettered, and the consumer goes on.
"""

from __future__ import annotations

from typing import Final

from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from db.projection import ProjectionError
from db.repositories.turnover import UnknownCardError
from stream_agents.letter_headers import clean

#: SQLSTATE prefixes worth retrying: the batch may succeed unchanged once the server is back
#: or a concurrent writer is gone (08 connection exception, 40 serialization failure or
#: deadlock, 53 too many connections / out of resources, 55P03 lock not available, 57P server
#: shutting down, 58 system error such as I/O).
TRANSIENT_SQLSTATES: Final = ("08", "40", "53", "55P03", "57P", "58")
#: SQLSTATE prefixes that say the deployment, not a record, is wrong: 28 invalid
#: authorization, 3D/3F invalid catalog/schema, 42 undefined table or column, no privilege.
FATAL_SQLSTATES: Final = ("28", "3D", "3F", "42")
FOREIGN_KEY_VIOLATION: Final = "23503"
#: Error fields safe to log: names and the primary message, never the row or parameters.
DIAGNOSTICS: Final = (
    ("constraint", "constraint_name"),
    ("table", "table_name"),
    ("message", "message_primary"),
)
#: Errors whose messages name ids and rules only, so they may be logged and stored.
SAFE_ERRORS: Final = (ProjectionError, UnknownCardError)


class ConsumerHaltedError(RuntimeError):
    """A fatal failure (see the module doc): the process stops with its offsets uncommitted."""


def sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "pgcode", None)


def is_transient(exc: BaseException) -> bool:
    """True when the same write may succeed if simply tried again later.

    Lost or refused connections (PostgreSQL restarting, a terminated backend, the network),
    lock conflicts and broker errors qualify; constraint violations, bad data and SQL errors
    never do.
    """
    if isinstance(exc, PoolTimeoutError | KafkaError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    code = sqlstate(exc)
    if code is not None and code.startswith(TRANSIENT_SQLSTATES):
        return True
    # No SQLSTATE: the server never answered (refused, reset, closed mid-statement).
    lost = exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return lost and code is None


def is_fatal(exc: BaseException) -> bool:
    """True when no record could be written: authentication, a missing table, no privilege."""
    if not isinstance(exc, DBAPIError):
        return False
    code = sqlstate(exc)
    return code is not None and code.startswith(FATAL_SQLSTATES)


def describe(exc: BaseException) -> str:
    """A log-safe account of an error: class, SQLSTATE, constraint, table, message.

    ``str(exc)`` is not used for database errors: it can contain the failing row (``DETAIL:
    Failing row contains ...``) or SQL parameters, which may include card data. Only two
    details are added: why a connection failed (no statement involved) and the missing key of
    a foreign-key violation (an id), which is what an operator needs to repair it. Other
    errors are named by class alone, unless they are :data:`SAFE_ERRORS` (ids and rules only).
    The result never holds control characters.
    """
    if isinstance(exc, SAFE_ERRORS):
        return clean(f"{type(exc).__name__}: {exc}")
    if not isinstance(exc, DBAPIError):
        return type(exc).__name__
    code, diag = sqlstate(exc), getattr(exc.orig, "diag", None)
    parts = [type(exc.orig).__name__, f"sqlstate={code}"]
    for label, attribute in DIAGNOSTICS:
        if value := getattr(diag, attribute, None):
            parts.append(f"{label}={value}")
    if code is None and isinstance(exc, OperationalError | InterfaceError):
        parts.append(f"reason={(str(exc.orig).strip().splitlines() or ['?'])[0]}")
    if code == FOREIGN_KEY_VIOLATION and (detail := getattr(diag, "message_detail", None)):
        parts.append(f"detail={detail}")
    return clean(" ".join(parts))
