"""One error shape for every refusal, and the mapping from core errors to HTTP.

Every error response is ``{"error": {"code": ..., "message": ..., "details": [...]}}`` with a
stable, machine-readable ``code``. Domain and authentication errors carry no HTTP status;
this module is the only place that decides one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from db.repositories.errors import RepositoryError
from domain.errors import DomainError
from domain.text import InvalidText
from ingest_api.rate_limit import RateLimitedError
from ingest_api.signing import AuthError
from ingest_api.text_types import INVALID_TEXT

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """An error raised by an endpoint, with the status it answers."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or []


#: Domain error code → HTTP status; anything else a domain error says is a 422.
DOMAIN_STATUS: dict[str, int] = {
    "order_not_found": status.HTTP_404_NOT_FOUND,
    "order_mismatch": status.HTTP_404_NOT_FOUND,  # another partner's order: do not confirm it
    "order_conflict": status.HTTP_409_CONFLICT,
    "illegal_transition": status.HTTP_409_CONFLICT,
    "deadline_passed": status.HTTP_409_CONFLICT,
    "not_yet_expired": status.HTTP_409_CONFLICT,
    "order_not_disputable": status.HTTP_409_CONFLICT,
    "dispute_exists": status.HTTP_409_CONFLICT,
    "dispute_resolved": status.HTTP_409_CONFLICT,
    "receipt_too_large": status.HTTP_413_CONTENT_TOO_LARGE,
    "receipt_type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
}


def error_response(
    status_code: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or []))
    return JSONResponse(status_code=status_code, content=body.model_dump())


def domain_error(exc: DomainError) -> ApiError:
    details = None
    if isinstance(exc, InvalidText):
        details = [{"field": exc.field, "problem": exc.message, "reason": exc.problem.value}]
    return ApiError(DOMAIN_STATUS.get(exc.code, 422), exc.code, str(exc), details)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    err = domain_error(exc)
    return error_response(err.status_code, err.code, err.message, err.details)


#: Repository error code → HTTP status; anything else a repository refuses is a 422.
REPOSITORY_STATUS: dict[str, int] = {
    "not_found": status.HTTP_404_NOT_FOUND,
    "already_exists": status.HTTP_409_CONFLICT,
    "duplicate_card": status.HTTP_409_CONFLICT,
    "stale_version": status.HTTP_409_CONFLICT,
    "partner_busy": status.HTTP_409_CONFLICT,
}


async def _repository_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RepositoryError)
    return error_response(REPOSITORY_STATUS.get(exc.code, 422), exc.code, str(exc))


async def _auth_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    return error_response(status.HTTP_401_UNAUTHORIZED, exc.code, exc.message)


def printable(text: str) -> str:
    """``text`` safe to put in a JSON answer: a lone surrogate (which no UTF-8 answer can
    carry) is shown as its ``\\udXXX`` escape instead of turning the answer into a 500."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _field_name(loc: Sequence[Any]) -> str:
    return printable(".".join(str(p) for p in loc[1:]))


def _detail(error: Mapping[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "field": _field_name(error.get("loc", ())),
        "problem": printable(str(error.get("msg", ""))),
    }
    if error.get("type") == INVALID_TEXT:
        detail["reason"] = error.get("ctx", {}).get("reason")
    return detail


def invalid_text_response(details: list[dict[str, Any]]) -> JSONResponse:
    """``422 invalid_text``: the message names each field, for callers that only show it."""
    named = ", ".join(f"{d['field']} ({d['reason']})" for d in details)
    return error_response(422, INVALID_TEXT, f"text outside the accepted rule: {named}", details)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    details = [_detail(e) for e in errors]
    if all(e.get("type") == INVALID_TEXT for e in errors):
        return invalid_text_response(details)
    return error_response(422, "invalid_request", "the request does not match the schema", details)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's own 400: a body it could not even decode (not UTF-8, say). To the caller
        # that is the same mistake as a JSON syntax error, so it gets the same answer.
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
    code = codes.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


def _unavailable(code: str, message: str) -> JSONResponse:
    response = error_response(status.HTTP_503_SERVICE_UNAVAILABLE, code, message)
    response.headers["Retry-After"] = "1"
    return response


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The driver's text may quote connection details; the type is enough for the log.
    log.warning("database unavailable: %s", type(exc).__name__)
    return _unavailable("database_unavailable", "the database is not answering; retry shortly")


async def _broker_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("broker unavailable: %s", type(exc).__name__)
    return _unavailable("broker_unavailable", "the message broker is not answering; retry shortly")


async def _rate_limited(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitedError)
    response = error_response(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests for this partner; retry after the Retry-After seconds",
    )
    response.headers["Retry-After"] = exc.retry_after_header
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RepositoryError, _repository_error)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(RateLimitedError, _rate_limited)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Nothing was changed when a dependency is down: say so, and that a retry is welcome.
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(KafkaError, _broker_unavailable)


#: For route decorators of endpoints that take a JSON body: it may not parse, or be too big.
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON"},
    413: {"model": ErrorResponse, "description": "Body too large"},
}
#: For route decorators of endpoints that read the database.
UNAVAILABLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorResponse,
        "description": "The API is at capacity (`overloaded`, with `Retry-After`), or the "
        "database or broker is unavailable; retry",
    },
}
#: For route decorators of endpoints that wait for the order agent's answer.
TIMEOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    504: {"model": ErrorResponse, "description": "No answer in time; read the order again"},
}

#: For route decorators: the error responses every authenticated endpoint may give.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON"},
    401: {"model": ErrorResponse, "description": "Authentication failed"},
    413: {"model": ErrorResponse, "description": "Body too large"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    429: {
        "model": ErrorResponse,
        "description": "Over this partner's request rate (`rate_limited`); retry after "
        "`Retry-After` seconds",
    },
    503: {
        "model": ErrorResponse,
        "description": "The API is at capacity (`overloaded`, with `Retry-After`), or the "
        "database or broker is unavailable; retry",
    },
}
