"""Every error mapped to its HTTP answer in one place, and described once for OpenAPI."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import OPENAI_PREFIX, AppError, error_content
from app.db.outage import (
    DATABASE_BUSY,
    DATABASE_UNAVAILABLE,
    TEXT_WITH_NUL,
    is_database_outage,
    is_text_with_nul,
)

logger = logging.getLogger(__name__)


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


def error_response(
    request: Request,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    param: str | None = None,
) -> JSONResponse:
    content = error_content(request.url.path, status, message, param)
    return JSONResponse(content, status_code=status, headers=headers)


def _describe_validation_error(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()))
        parts.append(f"{location}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(request, exc.status_code, exc.message, exc.headers)


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (404 for an unknown path, 405, and the 408 and 413 that the
    body middleware raise), in the same bodies as the rest."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return error_response(request, exc.status_code, str(exc.detail), exc.headers)


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # The original front end shows `detail` as text, so it is a sentence here;
    # the structured list stays available under `errors`.
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith(OPENAI_PREFIX):
        # OpenAI answers a bad parameter with 400, naming it.
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
        return error_response(request, 400, _describe_validation_error(exc), param=param)
    body = ValidationErrorResponse(
        detail=_describe_validation_error(exc),
        errors=[FieldError(loc=list(e.get("loc", ())), msg=e.get("msg", "")) for e in exc.errors()],
    )
    return JSONResponse(body.model_dump(), status_code=422)


async def _database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if is_text_with_nul(exc):
        return error_response(request, 422, TEXT_WITH_NUL)
    if not is_database_outage(exc):
        raise exc
    logger.warning(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
    )
    return error_response(request, 503, DATABASE_UNAVAILABLE)


async def _pool_timeout_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("no free database connection for %s %s", request.method, request.url.path)
    return error_response(request, 503, DATABASE_BUSY, {"Retry-After": "1"})


async def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "internal server error")


def register_error_handlers(app: FastAPI) -> None:
    """Map every error type to its HTTP answer, in this one place."""
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    # Not under Exception: that handler answers and re-raises, and uvicorn then drops
    # the keep-alive connection; an outage is an answer, not a crash.
    app.add_exception_handler(DBAPIError, _database_error_handler)
    app.add_exception_handler(OSError, _database_error_handler)
    app.add_exception_handler(PoolTimeout, _pool_timeout_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)
