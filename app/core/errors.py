"""One error type for everything a caller can cause.

Services raise these; the web edge (`app/web/errors.py`) renders them as
`{"detail": ...}` with their status code (OpenAI's `{"error": {...}}` on the
OpenAI-compatible face, see error_content), the CLI prints their message.
"""

from typing import Any


class AppError(Exception):
    """An expected failure: its message is safe to show to the caller."""

    status_code = 400
    # Whether the same request may succeed later (the fault was elsewhere: the model
    # provider, a busy server), so a failed document is worth a retry.
    retryable = False

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
    retryable = True


class BadGateway(AppError):
    status_code = 502
    retryable = True


class ServiceUnavailable(AppError):
    status_code = 503
    retryable = True


class GatewayTimeout(AppError):
    status_code = 504
    retryable = True


class StartupError(RuntimeError):
    """The service cannot start as configured; the message says what to change."""


# Routes under this prefix are the OpenAI-compatible face (app/openai_api): their errors
# have OpenAI's body, so the official SDK raises its own exception classes.
OPENAI_PREFIX = "/v1/"
_OPENAI_ERROR_TYPES = {401: "authentication_error", 429: "rate_limit_error"}


def error_content(path: str, status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """The body of an error answer: `{"detail": ...}`, or OpenAI's `{"error": {...}}` on
    the OpenAI-compatible face."""
    if not path.startswith(OPENAI_PREFIX):
        return {"detail": message}
    kind = _OPENAI_ERROR_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}
