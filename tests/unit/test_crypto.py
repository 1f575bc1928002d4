"""Sealing, fingerprinting and card-number handling (db/crypto.py): no I/O."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from db.crypto import (
    DEV_DATA_KEY,
    CardNumberCharacters,
    CardNumberChecksum,
    CardNumberError,
    CardNumberLength,
    DataKeyError,
    DataKeySettings,
    SealError,
    SecretBox,
    luhn_valid,
    mask_pan,
    normalise_pan,
)

VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"  # 15 digits
REAL_LOOKING_KEY = Fernet.generate_key().decode()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(REAL_LOOKING_KEY)


# --- sealing ------------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", ["", VISA, "ks_secret-with-ünïcode", "x" * 5000])
def test_seal_open_round_trip(box: SecretBox, plaintext: str) -> None:
    sealed = box.seal(plaintext)
    assert sealed.isascii()
    assert plaintext not in sealed or plaintext == ""
    assert box.open(sealed) == plaintext


def test_sealing_twice_gives_different_ciphertexts(box: SecretBox) -> None:
    assert box.seal(VISA) != box.seal(VISA)


def test_a_tampered_ciphertext_is_refused(box: SecretBox) -> None:
    sealed = box.seal(VISA)
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    raw[40] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SealError) as refused:
        box.open(tampered)
    assert VISA not in str(refused.value)


@pytest.mark.parametrize("garbage", ["", "not a token", "gAAAAA", "ünïcode"])
def test_garbage_is_refused_as_a_seal_error(box: SecretBox, garbage: str) -> None:
    with pytest.raises(SealError):
        box.open(garbage)


def test_another_key_cannot_open(box: SecretBox) -> None:
    other = SecretBox(Fernet.generate_key().decode())
    with pytest.raises(SealError):
        other.open(box.seal(VISA))


def test_the_box_never_shows_its_key(box: SecretBox) -> None:
    assert REAL_LOOKING_KEY not in repr(box)
    assert REAL_LOOKING_KEY not in str(box)


# --- the data key -------------------------------------------------------------------------


def settings(env: str, key: str | None = None) -> DataKeySettings:
    values: dict[str, object] = {"env": env}
    if key is not None:
        values["data_key"] = SecretStr(key)
    return DataKeySettings.model_validate(values)


def test_development_may_use_the_built_in_key() -> None:
    box = SecretBox.from_settings(settings("development"))
    assert box.open(box.seal("x")) == "x"


@pytest.mark.parametrize("env", ["production", "test"])
def test_outside_development_the_built_in_key_is_refused(env: str) -> None:
    with pytest.raises(DataKeyError, match="KEEPER_DATA_KEY must be set"):
        SecretBox.from_settings(settings(env))
    with pytest.raises(DataKeyError):
        SecretBox.from_settings(settings(env, DEV_DATA_KEY))


def test_production_accepts_its_own_key() -> None:
    box = SecretBox.from_settings(settings("production", REAL_LOOKING_KEY))
    assert box.open(box.seal("x")) == "x"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPER_ENV", "production")
    monkeypatch.delenv("KEEPER_DATA_KEY", raising=False)
    with pytest.raises(DataKeyError):
        SecretBox.from_settings()
    monkeypatch.setenv("KEEPER_DATA_KEY", REAL_LOOKING_KEY)
    assert SecretBox.from_settings().open(SecretBox(REAL_LOOKING_KEY).seal("x")) == "x"


@pytest.mark.parametrize(
    "bad_key",
    [
        "",
        "short",
        base64.urlsafe_b64encode(b"sixteen-byte-key").decode(),
        "not base64 at all!!!" * 3,
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(bad_key: str) -> None:
    with pytest.raises(DataKeyError) as refused:
        SecretBox.from_settings(settings("production", bad_key))
    if bad_key:
        assert bad_key not in str(refused.value)


# --- fingerprints -------------------------------------------------------------------------


def test_fingerprint_is_deterministic_keyed_and_format_blind(box: SecretBox) -> None:
    fingerprint = box.pan_fingerprint(VISA)
    assert len(fingerprint) == 64
    assert int(fingerprint, 16) >= 0
    assert box.pan_fingerprint("4111 1111 1111 1111") == fingerprint
    assert box.pan_fingerprint("4111-1111-1111-1111") == fingerprint
    assert box.pan_fingerprint(MASTERCARD) != fingerprint
    assert SecretBox(Fernet.generate_key().decode()).pan_fingerprint(VISA) != fingerprint
    assert VISA not in fingerprint


# --- card numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("pan", [VISA, MASTERCARD, AMEX, "4242424242424242", "6011111111111117"])
def test_public_test_numbers_pass_luhn(pan: str) -> None:
    assert luhn_valid(pan)


@pytest.mark.parametrize("pan", ["4111111111111112", "1234567812345678", "", "41111x1111111111"])
def test_luhn_refuses_bad_numbers(pan: str) -> None:
    assert not luhn_valid(pan)


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        (VISA, "411111******1111"),
        (AMEX, "378282*****0005"),
        ("4222222222222", "422222***2222"),
        ("6250941006528599", "625094******8599"),
        ("4" * 18 + "0", "444444" + "*" * 9 + "4440"),
    ],
)
def test_mask_keeps_first_six_and_last_four(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked
    assert len(mask_pan(pan)) == len(pan)


@pytest.mark.parametrize("bad", ["411111111111", "4" * 20, "4111 1111 1111 1111", "abc"])
def test_mask_refuses_what_is_not_a_digits_only_pan(bad: str) -> None:
    with pytest.raises(CardNumberError) as refused:
        mask_pan(bad)
    assert bad not in str(refused.value)


@pytest.mark.parametrize(
    "text", [VISA, " 4111 1111 1111 1111 ", "4111-1111-1111-1111", "4111 1111-1111 1111"]
)
def test_normalise_keeps_digits_only(text: str) -> None:
    assert normalise_pan(text) == VISA


@pytest.mark.parametrize(
    ("text", "error", "code"),
    [
        ("4111111111111112", CardNumberChecksum, "card_number_checksum"),
        ("411111111111", CardNumberLength, "card_number_length"),
        ("41111111111111111111", CardNumberLength, "card_number_length"),
        ("", CardNumberLength, "card_number_length"),
        ("4111.1111.1111.1111", CardNumberCharacters, "card_number_characters"),
        ("4111111111111111\n4111111111111111", CardNumberCharacters, "card_number_characters"),
        ("٤١١١١١١١١١١١١١١١", CardNumberCharacters, "card_number_characters"),  # Arabic digits
    ],
)
def test_normalise_refuses_with_a_code_and_never_repeats_the_number(
    text: str, error: type[CardNumberError], code: str
) -> None:
    with pytest.raises(error) as refused:
        normalise_pan(text)
    assert isinstance(refused.value, ValueError)
    assert refused.value.code == code
    message = str(refused.value) + repr(refused.value) + refused.value.message
    digits = "".join(char for char in text if char.isdigit())
    assert not digits or digits not in message
    assert "4111" not in message
