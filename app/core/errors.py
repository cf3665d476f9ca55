"""One error type for everything a caller can cause.

Services raise these; the web edge (`app/web/errors.py`) renders them as
`{"detail": ...}` with their status code, the CLI prints their message.
"""


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
