"""The console's calls to the Keeper API: sign-in (one or two steps), sign-out, password
change, decisions.

The console never decides an order or opens a session itself: the API checks the role again
and sends the decision through the order agent, which serialises concurrent decisions, and
throttles sign-ins (a ``429`` carries ``retry_after_s``). The transport is injectable
(``httpx.MockTransport`` in unit tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class ApiCallError(Exception):
    """The API refused a call (``status``, stable ``code``) or could not be reached."""

    def __init__(
        self, status: int, code: str, message: str, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        #: ``Retry-After`` of a ``429`` (sign-in throttled), in seconds.
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    username: str
    role: str
    expires_at: str
    second_factor_enrolment_required: bool = False
    password_change_required: bool = False


@dataclass(frozen=True, slots=True)
class Challenge:
    """The password was right; the code goes with ``challenge`` to the second step."""

    challenge: str
    expires_at: str


def _signed_in(body: dict[str, Any]) -> SignedIn:
    return SignedIn(
        body["token"],
        body["username"],
        body["role"],
        body["expires_at"],
        bool(body.get("second_factor_enrolment_required", False)),
        bool(body.get("password_change_required", False)),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    uid: str
    status: str
    decided_by: str | None


class KeeperApi:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._transport = transport

    def _post(
        self,
        path: str,
        body: dict[str, Any],
        token: str | None = None,
        client_address: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if client_address:  # counted by the API only if this host is a trusted proxy
            headers["X-Forwarded-For"] = client_address
        try:
            with httpx.Client(
                base_url=self._base_url, timeout=self._timeout_s, transport=self._transport
            ) as client:
                answer = client.post(path, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise ApiCallError(0, "api_unreachable", f"the API did not answer: {error}") from None
        if answer.is_success:
            return answer
        raise _refusal(answer)

    def login(
        self, username: str, password: str, client_address: str | None = None
    ) -> SignedIn | Challenge:
        """Sign in (step 1); ``client_address`` is the browser's, for the API's sign-in
        throttle. A user with two-factor sign-in gets a :class:`Challenge` for step 2."""
        credentials = {"username": username, "password": password}
        body = self._post("/v1/auth/login", credentials, client_address=client_address).json()
        if "challenge" in body:
            return Challenge(body["challenge"], body["expires_at"])
        return _signed_in(body)

    def login_second_factor(
        self, challenge: str, code: str, client_address: str | None = None
    ) -> SignedIn:
        """Sign in (step 2): the challenge of step 1 with a TOTP or recovery code."""
        body = self._post(
            "/v1/auth/login/second-factor",
            {"challenge": challenge, "code": code},
            client_address=client_address,
        ).json()
        return _signed_in(body)

    def logout(self, token: str) -> None:
        self._post("/v1/auth/logout", {}, token)

    def change_password(self, token: str, current: str, new: str) -> None:
        self._post("/v1/auth/password", {"current_password": current, "new_password": new}, token)

    def decide(self, token: str, uid: str, verdict: str, reason: str) -> Decision:
        path = f"/v1/operator/orders/{uid}/decision"
        body = self._post(path, {"verdict": verdict, "reason": reason}, token).json()
        return Decision(str(body["uid"]), body["status"], body.get("decided_by"))

    def confirm_payment(self, token: str, uid: str, notification_id: str) -> str:
        """Confirm a deposit still ``new`` as paid, on the bank notification attached to it;
        the order's status after (``processing``)."""
        path = f"/v1/operator/orders/{uid}/payment"
        body = self._post(path, {"notification_id": notification_id}, token).json()
        return str(body["status"])

    def decide_dispute(
        self, token: str, dispute_id: str, verdict: str, reason: str
    ) -> DisputeDecision:
        """Accept (credit the deposit late) or reject an open dispute; accepting an accepted
        one again re-sends its credit, which the ledger books once."""
        path = f"/v1/operator/disputes/{dispute_id}/decision"
        body = self._post(path, {"verdict": verdict, "reason": reason}, token).json()
        return DisputeDecision(str(body["dispute_id"]), body["status"], bool(body["credit_sent"]))


@dataclass(frozen=True, slots=True)
class DisputeDecision:
    dispute_id: str
    status: str
    credit_sent: bool


def _refusal(answer: httpx.Response) -> ApiCallError:
    try:
        error = answer.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details") or []
        if code == "invalid_request" and details:
            message = "; ".join(f"{d.get('field')}: {d.get('problem')}" for d in details)
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", f"HTTP {answer.status_code}"
    return ApiCallError(answer.status_code, code, message, _retry_after_s(answer))


def _retry_after_s(answer: httpx.Response) -> int | None:
    value = answer.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None
