"""One error type for everything a caller can cause, rendered as `{"detail": ...}`."""

import logging
import traceback
from collections.abc import Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)


class AppError(Exception):
    """An expected failure: its message is safe to show to the caller."""

    status_code = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class UnsupportedMediaType(AppError):
    status_code = 415


class UnprocessableContent(AppError):
    status_code = 422


class TooManyRequests(AppError):
    status_code = 429


class BadGateway(AppError):
    status_code = 502


class ServiceUnavailable(AppError):
    status_code = 503


class GatewayTimeout(AppError):
    status_code = 504


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    detail: str = Field(description="What went wrong, in a sentence safe to show.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: `body`, `query`, `path`... then the field.")
    msg: str


class ValidationErrorResponse(ErrorResponse):
    """422: a request the schema refuses lists each problem under `errors`; content
    refused later (a file with no text, a bad filter) has `detail` only."""

    errors: list[FieldError] = Field(default_factory=list)


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's error statuses for OpenAPI, each with the body this module renders."""
    return {
        status: {
            "model": ValidationErrorResponse if status == 422 else ErrorResponse,
            "description": description,
        }
        for status, description in descriptions.items()
    }


# For every router whose routes all take parameters or a body (FastAPI's own 422
# description promises a list in `detail`, which is not what this module renders).
INVALID_REQUEST = error_responses(
    {422: "The request does not match the schema: `detail` says where, `errors` lists each problem"}
)
# Routes with a body refuse one that cannot be decoded (FastAPI answers 400 itself).
UNREADABLE_BODY = "The body cannot be decoded (not UTF-8 JSON, or broken multipart)"


def _describe_validation_error(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()))
        parts.append(f"{location}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _app_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    body = ErrorResponse(detail=exc.message)
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    # The original front end shows `detail` as text, so it is a sentence here;
    # the structured list stays available under `errors`.
    assert isinstance(exc, RequestValidationError)
    body = ValidationErrorResponse(
        detail=_describe_validation_error(exc),
        errors=[FieldError(loc=list(e.get("loc", ())), msg=e.get("msg", "")) for e in exc.errors()],
    )
    return JSONResponse(body.model_dump(), status_code=422)


DATABASE_UNAVAILABLE = "database unavailable: PostgreSQL is not answering; try again shortly"
# The server refuses connections while it shuts down or starts (57P03), ended ours
# when it stopped (57P01-57P02), or the connection itself failed (08xxx).
_DRIVER_OUTAGE_ERRORS = (
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.PostgresConnectionError,
)


# PostgreSQL's text and jsonb cannot hold U+0000, and refuse it wherever in a request
# it came (a path, a name, a query): 22021 in text, 22P05 in jsonb. A 422, not a 500.
TEXT_WITH_NUL = "text must not contain NUL (\\u0000) characters: PostgreSQL cannot store them"
_DRIVER_NUL_ERRORS = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


def _driver_error(exc: DBAPIError) -> BaseException | None:
    return exc.orig.__cause__ if exc.orig is not None else None


def is_database_outage(exc: BaseException) -> bool:
    """PostgreSQL is down, restarting or dropped the connection: not the caller's
    doing, and over once it is back (the pool's pre-ping replaces broken connections)."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(_driver_error(exc), _DRIVER_OUTAGE_ERRORS)
    # A connect that failed at the socket (no server, refused, timed out) surfaces
    # unwrapped; only OSErrors raised inside the driver mean the database.
    return isinstance(exc, OSError) and any(
        frame.f_globals.get("__name__", "").startswith("asyncpg")
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


async def _database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and isinstance(_driver_error(exc), _DRIVER_NUL_ERRORS):
        return JSONResponse(ErrorResponse(detail=TEXT_WITH_NUL).model_dump(), status_code=422)
    if not is_database_outage(exc):
        raise exc
    logger.warning(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
    )
    return JSONResponse({"detail": DATABASE_UNAVAILABLE}, status_code=503)


async def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    """Map every error type to its HTTP answer, in this one place."""
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    # Not under Exception: that handler answers and re-raises, and uvicorn then drops
    # the keep-alive connection; an outage is an answer, not a crash.
    app.add_exception_handler(DBAPIError, _database_error_handler)
    app.add_exception_handler(OSError, _database_error_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)


class StartupError(RuntimeError):
    """The service cannot start as configured; the message says what to change."""
