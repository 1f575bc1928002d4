"""A signing client for the Keeper partner API, and a command line on top of it.

Library use::

    with KeeperClient("https://keeper.example", "kid_live_01", secret) as keeper:
        order = keeper.create_order(
            direction="deposit", amount_minor=150_00, currency="EUR", partner_order_id="A-1"
        )

Signing is an ``httpx.Auth`` (:class:`KeeperAuth`) that runs after httpx has built the
request, so what gets signed is the path, query and body bytes that go on the wire, whatever
httpx did to encode them. It works unchanged with ``httpx.AsyncClient``, which is how async
tests (``httpx.ASGITransport``) sign requests.

Command line (the secret comes from an environment variable or a file, never from argv, and
is never printed)::

    python -m ingest_api.client --base-url URL --key-id ID --secret-env VAR <command> [...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

import httpx

from ingest_api.signing import Clock, canonical_request, check_key_id, signed_headers

USER_AGENT: Final = "keeper-client/0.1"

FilterValue = str | int | bool | Sequence[str | int] | None


class KeeperAuth(httpx.Auth):
    """Adds the four ``X-Keeper-*`` headers to every request, each with a fresh nonce."""

    requires_request_body = True

    def __init__(self, key_id: str, secret: bytes, clock: Clock = time.time) -> None:
        if not secret:
            raise ValueError("secret must not be empty")
        self._key_id = check_key_id(key_id)
        self._secret = secret
        self._clock = clock

    def __repr__(self) -> str:  # the secret must not reach logs or tracebacks
        return f"KeeperAuth(key_id={self._key_id!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path, _, query = request.url.raw_path.partition(b"?")
        request.headers.update(
            signed_headers(
                self._key_id,
                self._secret,
                request.method,
                path.decode("ascii"),
                query,
                request.content,
                now=self._clock(),
            )
        )
        yield request


class KeeperApiError(Exception):
    """A non-2xx answer. ``code`` is the API's machine-readable error code when it sent one."""

    def __init__(self, status_code: int, payload: Any) -> None:
        self.status_code = status_code
        self.payload = payload
        self.code = _error_code(payload)
        super().__init__(f"HTTP {status_code}" + (f" ({self.code})" if self.code else ""))


def _error_code(payload: Any) -> str | None:
    """Best effort: ``{"code": ...}``, or nested under ``error`` or ``detail``."""
    if not isinstance(payload, dict):
        return None
    for candidate in (payload, payload.get("error"), payload.get("detail")):
        if isinstance(candidate, dict) and isinstance(candidate.get("code"), str):
            return str(candidate["code"])
    return None


def _json_bytes(document: Any) -> bytes:
    """Serialise once; these exact bytes are both signed and sent."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _order_path(uid: str | uuid.UUID, suffix: str = "") -> str:
    """Uids are UUIDs; parsing one first keeps anything else (``..``, ``/``) out of the path."""
    try:
        return f"/v1/orders/{uuid.UUID(str(uid))}{suffix}"
    except ValueError:
        raise ValueError(f"{str(uid)!r} is not an order uid") from None


def _filter_params(filters: dict[str, FilterValue]) -> list[tuple[str, str]]:
    def text(value: str | int) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    params: list[tuple[str, str]] = []
    for name, value in filters.items():
        if value is None:
            continue
        items = [value] if isinstance(value, str | int) else list(value)
        params.extend((name, text(item)) for item in items)
    return params


def _order_document(
    direction: str,
    amount_minor: int,
    currency: str,
    partner_order_id: str,
    ttl_s: int | None,
    callback_url: str | None,
) -> dict[str, Any]:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amount_minor must be an int of minor units, never a float")
    document: dict[str, Any] = {
        "partner_order_id": partner_order_id,
        "direction": direction,
        "amount_minor": amount_minor,
        "currency": currency,
    }
    optional = {"ttl_s": ttl_s, "callback_url": callback_url}
    document.update({k: v for k, v in optional.items() if v is not None})
    return document


class KeeperClient:
    """Synchronous partner client; answers are decoded JSON, refusals :class:`KeeperApiError`."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: bytes,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            auth=KeeperAuth(key_id, secret, clock),
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,  # a redirect elsewhere would carry our signed headers
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )

    def __repr__(self) -> str:
        return f"KeeperClient(base_url={str(self._http.base_url)!r})"

    def __enter__(self) -> KeeperClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def create_order(
        self,
        *,
        direction: str,
        amount_minor: int,
        currency: str,
        partner_order_id: str,
        ttl_s: int | None = None,
        callback_url: str | None = None,
    ) -> Any:
        """``POST /v1/orders``; ``direction`` is ``deposit`` or ``withdrawal``."""
        document = _order_document(
            direction, amount_minor, currency, partner_order_id, ttl_s, callback_url
        )
        return self._send("POST", "/v1/orders", body=_json_bytes(document))

    def get_order(self, uid: str | uuid.UUID) -> Any:
        return self._send("GET", _order_path(uid))

    def list_orders(self, **filters: FilterValue) -> Any:
        """``GET /v1/orders``; ``None`` filters are left out, lists become repeated keys."""
        return self._send("GET", "/v1/orders", params=_filter_params(filters))

    def cancel_order(self, uid: str | uuid.UUID) -> Any:
        return self._send("POST", _order_path(uid, "/cancel"), body=b"")

    def balance(self) -> Any:
        return self._send("GET", "/v1/balance")

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> Any:
        headers = {"Content-Type": "application/json"} if body else None
        query = tuple(params) if params else None  # a tuple: httpx's list type is invariant
        response = self._http.request(method, path, params=query, content=body, headers=headers)
        return _decode(response)


def _decode(response: httpx.Response) -> Any:
    try:
        payload: Any = response.json() if response.content else None
    except ValueError:
        payload = response.text
    if not response.is_success:
        raise KeeperApiError(response.status_code, payload)
    return payload


# --- command line -----------------------------------------------------------------------


class CliError(Exception):
    """A usage problem the command line reports in one line (exit status 2)."""


def _read_secret(env_var: str | None, file_name: str | None) -> bytes:
    """The secret from the environment or a file, surrounding whitespace removed."""
    if env_var is not None:
        value = os.environ.get(env_var, "")
        source = f"environment variable {env_var}"
    else:
        assert file_name is not None  # argparse requires one of the two
        source = f"secret file {file_name}"
        try:
            value = Path(file_name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {source}: {type(exc).__name__}") from None
    if not value.strip():
        raise CliError(f"{source} is not set or is empty")
    return value.strip().encode()


class _RefuseSecretArgument(argparse.Action):
    """``--secret VALUE`` is refused without echoing VALUE (argparse would echo it as an
    unrecognised argument, into terminals and CI logs)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        parser.error("never pass the secret on the command line; use --secret-env or --secret-file")


def _add_order_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--amount-minor", type=int, required=True, help="integer minor units")
    parser.add_argument("--currency", required=True, help="ISO 4217 code, e.g. EUR")
    parser.add_argument("--partner-order-id", required=True)
    parser.add_argument("--ttl-s", type=int, help="seconds the payer has to act")
    parser.add_argument("--callback-url")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest_api.client",
        description="Signed requests to the Keeper partner API.",
        allow_abbrev=False,  # "--secret" must not quietly match a longer option
    )
    parser.add_argument("--base-url", help="e.g. https://keeper.example (not needed by sign)")
    parser.add_argument("--key-id", required=True, help="the public API key id")
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret-env", metavar="VAR", help="environment variable with the secret")
    secret.add_argument("--secret-file", metavar="PATH", help="file holding the secret")
    parser.add_argument("--secret", action=_RefuseSecretArgument, help=argparse.SUPPRESS)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for direction in ("deposit", "withdrawal"):
        order = commands.add_parser(f"create-{direction}", help=f"create a {direction} order")
        _add_order_arguments(order)
    for name in ("get", "cancel"):
        commands.add_parser(name, help=f"{name} one order").add_argument("uid")
    listing = commands.add_parser("list", help="list orders")
    listing.add_argument("filters", nargs="*", metavar="NAME=VALUE")
    commands.add_parser("balance", help="the partner's balances")
    _add_sign_parser(commands)
    return parser


def _add_sign_parser(commands: Any) -> None:
    sign = commands.add_parser("sign", help="print the auth headers for a request (debugging)")
    sign.add_argument("method")
    sign.add_argument("target", help="path with optional ?query, exactly as sent")
    body = sign.add_mutually_exclusive_group()
    body.add_argument("--body", help="body text (UTF-8)")
    body.add_argument("--body-file", help="file with the exact body bytes")
    sign.add_argument("--timestamp", type=int, help="unix seconds (default: now)")
    sign.add_argument("--nonce", help="default: a fresh random nonce")
    sign.add_argument("--show-canonical", action="store_true", help="also print what is signed")


def _list_filters(pairs: Sequence[str]) -> dict[str, FilterValue]:
    """``NAME=VALUE`` arguments; a name given twice becomes a repeated query key."""
    filters: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"list filter {pair!r} is not NAME=VALUE")
        filters.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in filters.items()}


def _sign_command(args: argparse.Namespace, secret: bytes, out: TextIO) -> None:
    path, _, query = args.target.partition("?")
    if args.body_file is not None:
        body = Path(args.body_file).read_bytes()
    else:
        body = (args.body or "").encode()
    headers = signed_headers(
        args.key_id, secret, args.method, path, query, body, args.timestamp, args.nonce
    )
    for name, value in headers.items():
        print(f"{name}: {value}", file=out)
    if args.show_canonical:
        timestamp, nonce = int(headers["X-Keeper-Timestamp"]), headers["X-Keeper-Nonce"]
        canonical = canonical_request(args.method, path, query, timestamp, nonce, body)
        print("\n--- canonical string (lines joined by \\n, no final newline) ---", file=out)
        print(canonical.decode(), file=out)


_API_COMMANDS: Final[dict[str, Callable[[KeeperClient, argparse.Namespace], Any]]] = {
    "create-deposit": lambda c, a: _create(c, a, "deposit"),
    "create-withdrawal": lambda c, a: _create(c, a, "withdrawal"),
    "get": lambda c, a: c.get_order(a.uid),
    "cancel": lambda c, a: c.cancel_order(a.uid),
    "list": lambda c, a: c.list_orders(**_list_filters(a.filters)),
    "balance": lambda c, a: c.balance(),
}


def _create(client: KeeperClient, args: argparse.Namespace, direction: str) -> Any:
    return client.create_order(
        direction=direction,
        amount_minor=args.amount_minor,
        currency=args.currency,
        partner_order_id=args.partner_order_id,
        ttl_s=args.ttl_s,
        callback_url=args.callback_url,
    )


def _api_command(
    args: argparse.Namespace, secret: bytes, transport: httpx.BaseTransport | None
) -> Any:
    if not args.base_url:
        raise CliError(f"--base-url is required for {args.command}")
    with KeeperClient(
        args.base_url, args.key_id, secret, timeout_s=args.timeout_s, transport=transport
    ) as client:
        return _API_COMMANDS[args.command](client, args)


def _print_json(document: Any, out: TextIO) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False), file=out)


def main(argv: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run one command; 0 on success, 1 when the API or the network refused, 2 on misuse.

    ``transport`` lets tests answer requests without a network.
    """
    args = _build_parser().parse_args(argv)
    try:
        secret = _read_secret(args.secret_env, args.secret_file)
        if args.command == "sign":
            _sign_command(args, secret, sys.stdout)
        else:
            _print_json(_api_command(args, secret, transport), sys.stdout)
    except (CliError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeeperApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        _print_json(exc.payload, sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"error: request failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["KeeperApiError", "KeeperAuth", "KeeperClient", "main"]


if __name__ == "__main__":
    sys.exit(main())
