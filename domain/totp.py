"""Time-based one-time passwords (RFC 6238) as Keeper accepts them, with no I/O.

A code is six digits for a 30 s time step (HMAC-SHA1, the parameters every authenticator
app uses; the codes themselves come from ``pyotp`` through ``db.otp``, passed in here as a
function of the step). A code of the step before or after the current one is accepted
too, for a phone's clock that drifts (RFC 6238, section 5.2, "one time step" of network
delay). A step is accepted at most once, and never one at or before the last accepted step
(RFC 6238, section 5.2: "the verifier MUST NOT accept the second attempt of the same OTP"):
a code seen over a shoulder or in a proxy's log cannot be replayed, not even within its own
window.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Final

STEP_S: Final = 30
DIGITS: Final = 6
#: Steps accepted either side of the current one.
DRIFT_STEPS: Final = 1

#: Recovery codes: 3 groups of 4 from an alphabet without look-alikes (0/o, 1/l/i).
RECOVERY_ALPHABET: Final = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_GROUPS: Final = 3
RECOVERY_GROUP_LEN: Final = 4


def step_of(unix_s: float) -> int:
    return int(unix_s // STEP_S)


def normalise_code(code: str) -> str | None:
    """The six digits of a typed TOTP code (spaces dropped), or ``None`` if it is not one."""
    digits = "".join(code.split())
    if len(digits) == DIGITS and digits.isascii() and digits.isdigit():
        return digits
    return None


def matching_step(
    code_at: Callable[[int], str], code: str, unix_s: float, last_step: int | None
) -> int | None:
    """The time step ``code`` belongs to, if it is a valid code near ``unix_s`` for a step
    after ``last_step``; ``None`` otherwise (wrong, too old, or already used). ``code_at``
    gives the secret's code of a step."""
    digits = normalise_code(code)
    if digits is None:
        return None
    current = step_of(unix_s)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # compare every candidate: the time taken does not tell which step matched
        if hmac.compare_digest(code_at(step), digits) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def new_recovery_code() -> str:
    """``xxxx-xxxx-xxxx``: 60 random bits; the first group finds the stored hash."""
    groups = (
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LEN))
        for _ in range(RECOVERY_GROUPS)
    )
    return "-".join(groups)


def normalise_recovery_code(code: str) -> str | None:
    """A typed recovery code in its stored form (lower case, dashes where they belong), or
    ``None`` if it cannot be one."""
    chars = [c for c in code.strip().lower() if c not in " -"]
    if len(chars) != RECOVERY_GROUPS * RECOVERY_GROUP_LEN:
        return None
    if not all(c in RECOVERY_ALPHABET for c in chars):
        return None
    size = RECOVERY_GROUP_LEN
    return "-".join("".join(chars[i : i + size]) for i in range(0, len(chars), size))


def recovery_lookup(normalised: str) -> str:
    """The first group: not secret, it names which stored hash to check."""
    return normalised[:RECOVERY_GROUP_LEN]


__all__ = [
    "DIGITS",
    "DRIFT_STEPS",
    "STEP_S",
    "matching_step",
    "new_recovery_code",
    "normalise_code",
    "normalise_recovery_code",
    "recovery_lookup",
    "step_of",
]
