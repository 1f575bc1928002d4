"""TOTP as Keeper accepts it (RFC 6238): the RFC's own test vector, the drift window, and
no step accepted twice or out of order."""

from __future__ import annotations

import base64

import pytest

from db import otp
from domain import totp

#: RFC 6238, appendix B: the SHA-1 secret "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
CODES = otp.codes_of(RFC_SECRET)


@pytest.mark.parametrize(
    ("unix_s", "eight_digits"),
    [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924")],
)
def test_rfc_6238_vectors(unix_s: int, eight_digits: str):
    """The RFC gives 8 digits; the 6-digit code is their last six (RFC 4226 truncation)."""
    assert otp.code_at(RFC_SECRET, totp.step_of(unix_s)) == eight_digits[-6:]


def test_a_code_of_the_step_before_now_and_after_is_accepted():
    now = 1_800_000_015.0
    step = totp.step_of(now)
    for offset in (-1, 0, 1):
        code = otp.code_at(RFC_SECRET, step + offset)
        assert totp.matching_step(CODES, code, now, None) == step + offset
    for offset in (-2, 2):
        code = otp.code_at(RFC_SECRET, step + offset)
        assert totp.matching_step(CODES, code, now, None) is None


def test_no_step_at_or_before_the_last_accepted_one():
    now = 1_800_000_015.0
    step = totp.step_of(now)
    code = otp.code_at(RFC_SECRET, step)
    assert totp.matching_step(CODES, code, now, step) is None  # the replay
    assert totp.matching_step(CODES, code, now, step + 1) is None  # a newer one was used
    older = otp.code_at(RFC_SECRET, step - 1)
    assert totp.matching_step(CODES, older, now, step - 1) is None
    newer = otp.code_at(RFC_SECRET, step + 1)
    assert totp.matching_step(CODES, newer, now, step) == step + 1


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "12 34 5"])
def test_what_is_not_six_digits_is_no_code(typed: str):
    assert totp.normalise_code(typed) is None
    assert totp.matching_step(CODES, typed, 1_800_000_000.0, None) is None


def test_typed_spaces_are_dropped():
    assert totp.normalise_code(" 123 456 ") == "123456"


def test_recovery_codes():
    codes = {totp.new_recovery_code() for _ in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert totp.normalise_recovery_code(code) == code
        assert totp.normalise_recovery_code(code.upper().replace("-", " ")) == code
        assert totp.recovery_lookup(code) == code[:4]
    assert totp.normalise_recovery_code("abcd-efgh-jkm") is None  # too short
    assert totp.normalise_recovery_code("abcd-efgh-jkm0") is None  # 0 is not in the alphabet


def test_provisioning_uri_names_the_account_and_issuer():
    uri = otp.provisioning_uri(RFC_SECRET, "olga", "Keeper")
    assert uri.startswith("otpauth://totp/Keeper:olga?")
    assert f"secret={RFC_SECRET}" in uri
    assert "issuer=Keeper" in uri


def test_new_secrets_are_160_bits():
    secret = otp.new_secret()
    assert len(base64.b32decode(secret)) == 20
