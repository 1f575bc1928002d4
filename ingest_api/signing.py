"""Partner request signing, scheme ``v1``: HMAC-SHA256 over a canonical form of the request.

The scheme is specified for partners in ``docs/partner-api.md`` ("Authentication"); this
module is its reference implementation, used by the API to verify and by
:mod:`ingest_api.client` to sign. Everything except :meth:`Verifier.verify` is a pure
function, so both sides share one canonicalisation and cannot drift apart.

Why each rule exists:

- the signature covers method, path, query, timestamp, nonce and a hash of the body, so no
  part of a captured request can be reused with another part;
- the query is parsed from the raw string and re-encoded one strict way, so the signature
  does not depend on how an HTTP library or a web framework chose to encode or decode it;
- the timestamp bounds how long a captured request stays usable, the nonce makes it usable
  once, and the nonce is only remembered after the signature checks out, so unsigned
  garbage can never burn a nonce that a legitimate request is about to use.

Refusals are :class:`AuthError` subclasses with stable ``code`` strings and no HTTP status:
mapping them to responses is the endpoint's business. No message ever carries a secret or
the expected signature.
"""

# Error names are the vocabulary partners see ("replayed nonce"), as in domain/errors.py.
# ruff: noqa: N818

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol
from urllib.parse import quote_from_bytes, unquote_to_bytes

from domain.api_keys import ApiKey

SCHEME: Final = "KEEPER-HMAC-SHA256-v1"
SIGNATURE_PREFIX: Final = "v1="

HEADER_KEY: Final = "X-Keeper-Key"
HEADER_TIMESTAMP: Final = "X-Keeper-Timestamp"
HEADER_NONCE: Final = "X-Keeper-Nonce"
HEADER_SIGNATURE: Final = "X-Keeper-Signature"
AUTH_HEADERS: Final = (HEADER_KEY, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)

#: Requests older or newer than this (against the server clock) are refused as stale.
DEFAULT_MAX_SKEW_S: Final = 300

_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TIMESTAMP_RE: Final = re.compile(r"0|[1-9][0-9]{0,11}")  # no sign, no leading zeros
_NONCE_RE: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIGNATURE_RE: Final = re.compile(r"v1=[0-9a-f]{64}")
_METHOD_RE: Final = re.compile(r"[A-Za-z]{1,16}")
_PATH_RE: Final = re.compile(r"/[\x21-\x7e]*")  # printable ASCII, checked for ? and # too

#: A query given as decoded pairs (repeated keys allowed) or as a mapping whose values may be
#: lists (one pair per element). A ``str``/``bytes`` query is the raw string after ``?``.
QueryPairs = Iterable[tuple[str, str]]
QueryMapping = Mapping[str, str | Sequence[str]]
Query = str | bytes | QueryMapping | QueryPairs | None

Clock = Callable[[], float]


# --- errors -----------------------------------------------------------------------------


class AuthError(Exception):
    """Base of every authentication refusal; ``code`` is stable and machine-readable."""

    code: ClassVar[str] = "auth_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingAuthHeader(AuthError):
    code = "missing_auth_header"

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            f"missing header(s): {', '.join(missing)}; every request must carry "
            f"{', '.join(AUTH_HEADERS)}"
        )
        self.headers = tuple(missing)


class MalformedAuthHeader(AuthError):
    code = "malformed_auth_header"

    def __init__(self, header: str, rule: str) -> None:
        super().__init__(f"{header} is malformed: {rule}")
        self.header = header


class UnknownApiKey(AuthError):
    code = "unknown_api_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id!r} is not known")
        self.key_id = key_id


class RevokedApiKey(AuthError):
    code = "revoked_api_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id!r} has been revoked")
        self.key_id = key_id


class StaleTimestamp(AuthError):
    """The timestamp is outside the window; the message tells the partner the server time."""

    code = "stale_timestamp"

    def __init__(self, timestamp: int, server_time_s: float, max_skew_s: int) -> None:
        distance_s = math.ceil(abs(timestamp - server_time_s))
        where = "ahead of" if timestamp > server_time_s else "behind"
        super().__init__(
            f"{HEADER_TIMESTAMP} is {distance_s} s {where} server time "
            f"({int(server_time_s)}); at most {max_skew_s} s either way is accepted"
        )
        #: Signed distance in whole seconds, positive when the client's clock is ahead.
        self.skew_s = distance_s if timestamp > server_time_s else -distance_s


class BadSignature(AuthError):
    code = "bad_signature"

    def __init__(self) -> None:
        super().__init__(
            "signature does not match the request; compare your canonical string "
            "with the one described in the partner API documentation"
        )


class ReplayedNonce(AuthError):
    code = "replayed_nonce"

    def __init__(self) -> None:
        super().__init__(
            f"{HEADER_NONCE} was already used with this API key; send a fresh nonce "
            "with every request"
        )


# --- canonical form ---------------------------------------------------------------------


def _encode(raw: bytes) -> str:
    """RFC 3986 percent-encoding: only unreserved characters stay literal, hex uppercase."""
    return quote_from_bytes(raw, safe="")


def parse_query(raw: str | bytes) -> list[tuple[bytes, bytes]]:
    """Decode a raw query string into byte pairs, the way a form decoder would.

    ``&`` separates pairs (empty segments are skipped), the first ``=`` separates key and
    value (none means an empty value), ``+`` is a space and ``%XX`` a byte; an invalid
    escape stays literal. Decoding to bytes rather than text means any byte sequence a
    client sent canonicalises to the same string on both sides.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    pairs = []
    for segment in data.replace(b"+", b" ").split(b"&"):
        if segment:
            key, _, value = segment.partition(b"=")
            pairs.append((unquote_to_bytes(key), unquote_to_bytes(value)))
    return pairs


def _pairs_of(query: QueryMapping | QueryPairs) -> list[tuple[bytes, bytes]]:
    if isinstance(query, Mapping):
        flat: list[tuple[str, str]] = []
        for key, value in query.items():
            values = [value] if isinstance(value, str) else list(value)
            flat.extend((key, item) for item in values)
        query = flat
    return [(key.encode(), value.encode()) for key, value in query]


def canonical_query(query: Query) -> str:
    """Pairs percent-encoded, sorted by encoded key then encoded value, joined with ``&``."""
    if query is None:
        return ""
    pairs = parse_query(query) if isinstance(query, str | bytes) else _pairs_of(query)
    encoded = sorted((_encode(key), _encode(value)) for key, value in pairs)
    return "&".join(f"{key}={value}" for key, value in encoded)


def _check_request_line(method: str, path: str) -> None:
    """Refuse inputs that could smuggle a line break or a query into the canonical string."""
    if not _METHOD_RE.fullmatch(method):
        raise ValueError("method must be 1-16 ASCII letters")
    if not _PATH_RE.fullmatch(path) or "?" in path or "#" in path:
        raise ValueError("path must start with '/', be printable ASCII, and hold no ? or #")


def canonical_request(
    method: str, path: str, query: Query, timestamp: int, nonce: str, body: bytes | None
) -> bytes:
    """The exact bytes that get signed: seven lines joined by ``\\n``, no trailing newline.

    ``path`` is the path as sent on the wire (still percent-encoded, without the query);
    ``query`` is the raw query string or decoded pairs; ``body`` the raw body bytes.
    """
    _check_request_line(method, path)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative integer of unix seconds")
    if not _NONCE_RE.fullmatch(nonce):
        raise ValueError("nonce must be 16-64 characters of [A-Za-z0-9_-]")
    lines = (
        SCHEME,
        method.upper(),
        path,
        canonical_query(query),
        str(timestamp),
        nonce,
        hashlib.sha256(body or b"").hexdigest(),
    )
    return "\n".join(lines).encode("ascii")


def sign(
    secret: bytes,
    method: str,
    path: str,
    query: Query,
    timestamp: int,
    nonce: str,
    body: bytes | None,
) -> str:
    """The ``X-Keeper-Signature`` value: ``v1=`` + lowercase hex HMAC-SHA256."""
    if not secret:
        raise ValueError("secret must not be empty")
    message = canonical_request(method, path, query, timestamp, nonce, body)
    return SIGNATURE_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """32 URL-safe characters from the OS CSPRNG: 192 bits, never repeated in practice."""
    return secrets.token_urlsafe(24)


def check_key_id(key_id: str) -> str:
    """``key_id`` if it is a well-formed API key id, else ``ValueError``."""
    if not _KEY_ID_RE.fullmatch(key_id):
        raise ValueError("key id must be 1-64 characters of [A-Za-z0-9._-]")
    return key_id


def signed_headers(
    key_id: str,
    secret: bytes,
    method: str,
    url_path: str,
    query: Query,
    body: bytes | None,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four authentication headers for one request; a fresh nonce unless one is given."""
    check_key_id(key_id)
    timestamp = int(time.time() if now is None else now)
    nonce = new_nonce() if nonce is None else nonce
    return {
        HEADER_KEY: key_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(secret, method, url_path, query, timestamp, nonce, body),
    }


# --- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class AuthenticatedPartner:
    """Who signed the request: the endpoint authorises on ``partner_id``."""

    partner_id: str
    key_id: str


class KeyLookup(Protocol):
    """Finds an API key by its public id; ``None`` when there is no such key."""

    async def get(self, key_id: str) -> ApiKey | None: ...


class NonceStore(Protocol):
    """Remembers ``(key_id, nonce)`` until ``expires_at_s``.

    ``remember`` returns ``False`` when the pair is already remembered; check and insert
    must be one atomic step, or two concurrent replays could both pass.
    """

    async def remember(self, key_id: str, nonce: str, expires_at_s: float) -> bool: ...


class StaticKeyLookup:
    """A fixed set of keys in memory: for tests, the signing CLI and development servers."""

    def __init__(self, keys: Mapping[str, ApiKey]) -> None:
        self._keys = dict(keys)

    async def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)


@dataclass(frozen=True)
class AuthHeaders:
    """The four authentication headers, parsed and well-formed (not yet verified)."""

    key_id: str
    timestamp: int
    nonce: str
    signature: str


_HEADER_RULES: Final = {
    HEADER_KEY: (_KEY_ID_RE, "1-64 characters of [A-Za-z0-9._-]"),
    HEADER_TIMESTAMP: (_TIMESTAMP_RE, "unix seconds as a decimal integer, no sign or padding"),
    HEADER_NONCE: (_NONCE_RE, "16-64 characters of [A-Za-z0-9_-]"),
    HEADER_SIGNATURE: (_SIGNATURE_RE, "'v1=' followed by 64 lowercase hex digits"),
}


def _collect_auth_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Our four headers, matched case-insensitively; a header repeated with two values is
    malformed (``items()`` of a multi-dict such as Starlette's yields every copy)."""
    wanted = {name.lower(): name for name in AUTH_HEADERS}
    found: dict[str, str] = {}
    for raw_name, value in headers.items():
        name = wanted.get(raw_name.lower())
        if name is None:
            continue
        if name in found and found[name] != value:
            raise MalformedAuthHeader(name, "sent more than once with different values")
        found[name] = value
    return found


def parse_auth_headers(headers: Mapping[str, str]) -> AuthHeaders:
    """Presence first (all missing ones named at once), then the format of each."""
    found = _collect_auth_headers(headers)
    missing = [name for name in AUTH_HEADERS if not found.get(name)]
    if missing:
        raise MissingAuthHeader(missing)
    for name, (pattern, rule) in _HEADER_RULES.items():
        if not pattern.fullmatch(found[name]):
            raise MalformedAuthHeader(name, rule)
    return AuthHeaders(
        key_id=found[HEADER_KEY],
        timestamp=int(found[HEADER_TIMESTAMP]),
        nonce=found[HEADER_NONCE],
        signature=found[HEADER_SIGNATURE],
    )


@dataclass(frozen=True)
class SignedRequest:
    """A request whose key, window and signature checked out; its nonce not yet spent."""

    partner: AuthenticatedPartner
    nonce: str
    expires_at_s: float


class Verifier:
    """Checks a request's signature; the only stateful step is the nonce store."""

    def __init__(
        self,
        keys: KeyLookup,
        nonces: NonceStore,
        clock: Clock = time.time,
        max_skew_s: int = DEFAULT_MAX_SKEW_S,
    ) -> None:
        if max_skew_s <= 0:
            raise ValueError("max_skew_s must be positive")
        self._keys = keys
        self._nonces = nonces
        self._clock = clock
        self._max_skew_s = max_skew_s

    async def verify(
        self,
        method: str,
        path: str,
        query_string: str | bytes,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> AuthenticatedPartner:
        """Who signed this request, or the first :class:`AuthError` in the documented order.

        ``path`` and ``query_string`` must be the raw forms from the request line (for ASGI:
        ``scope["raw_path"]`` and ``scope["query_string"]``), never framework-decoded ones.
        """
        signed = await self.authenticate(method, path, query_string, headers, body)
        return await self.consume_nonce(signed)

    async def authenticate(
        self,
        method: str,
        path: str,
        query_string: str | bytes,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> SignedRequest:
        """Every check but the nonce: the caller may refuse a genuine request (a partner
        over its rate) before its nonce costs a write, then calls :meth:`consume_nonce`."""
        auth = parse_auth_headers(headers)
        key = await self._active_key(auth.key_id)
        self._check_window(auth.timestamp)
        self._check_signature(key, auth, method, path, query_string, body)
        # The request stays acceptable until timestamp + window, so remember it that long.
        return SignedRequest(
            partner=AuthenticatedPartner(partner_id=key.partner_id, key_id=auth.key_id),
            nonce=auth.nonce,
            expires_at_s=auth.timestamp + self._max_skew_s,
        )

    async def consume_nonce(self, signed: SignedRequest) -> AuthenticatedPartner:
        """Remember the nonce of a request whose signature checked out (only then: an
        unsigned request must not burn a legitimate nonce); a replay raises."""
        partner = signed.partner
        if not await self._nonces.remember(partner.key_id, signed.nonce, signed.expires_at_s):
            raise ReplayedNonce()
        return partner

    async def _active_key(self, key_id: str) -> ApiKey:
        key = await self._keys.get(key_id)
        if key is None:
            raise UnknownApiKey(key_id)
        if not key.active:
            raise RevokedApiKey(key_id)
        return key

    @staticmethod
    def _check_signature(
        key: ApiKey,
        auth: AuthHeaders,
        method: str,
        path: str,
        query_string: str | bytes,
        body: bytes | None,
    ) -> None:
        try:
            expected = sign(
                key.secret, method, path, query_string, auth.timestamp, auth.nonce, body
            )
        except ValueError:
            # A method or path no client can sign (``M-SEARCH``, raw non-ASCII bytes): the
            # client's signature cannot be over this request, and it must not become a 500.
            raise BadSignature() from None
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            raise BadSignature()

    def _check_window(self, timestamp: int) -> None:
        now = self._clock()
        if abs(now - timestamp) > self._max_skew_s:
            raise StaleTimestamp(timestamp, now, self._max_skew_s)


__all__ = [
    "AUTH_HEADERS",
    "DEFAULT_MAX_SKEW_S",
    "HEADER_KEY",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SCHEME",
    "AuthError",
    "AuthHeaders",
    "AuthenticatedPartner",
    "BadSignature",
    "Clock",
    "KeyLookup",
    "MalformedAuthHeader",
    "MissingAuthHeader",
    "NonceStore",
    "Query",
    "ReplayedNonce",
    "RevokedApiKey",
    "SignedRequest",
    "StaleTimestamp",
    "StaticKeyLookup",
    "UnknownApiKey",
    "Verifier",
    "canonical_query",
    "canonical_request",
    "check_key_id",
    "new_nonce",
    "parse_auth_headers",
    "parse_query",
    "sign",
    "signed_headers",
]
