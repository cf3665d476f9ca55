"""Logging set-up, with a last line of defence that keeps API keys out of logs."""

import contextvars
import logging
import re

# The key a request carried, so the redacting filter can scrub it from any
# record logged while that request runs (ours or a library's).
request_api_key: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_api_key", default=None
)

_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9_\-.]{6,})")
# A key sent in a URL (`?api_key=...`), of any shape: uvicorn's access log writes URLs.
_KEY_IN_QUERY = re.compile(r"\b((?:api[_-]?key|key|token|access_token)=)[^&\s\"']+", re.IGNORECASE)
# uvicorn's own loggers keep their own handlers and do not propagate to the root.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
REDACTED = "[REDACTED]"
# Every command's lines, a server's included: the first basicConfig of a process wins.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TRACEBACKS = logging.Formatter()


class SecretRedactingFilter(logging.Filter):
    """Replaces known secrets and key-shaped strings in every log record."""

    def __init__(self, known_secrets: list[str]) -> None:
        super().__init__()
        self._known_secrets = [secret for secret in known_secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [*self._known_secrets, request_api_key.get() or ""]
        message = record.getMessage()
        redacted = redact(message, secrets)
        if redacted != message:
            record.msg, record.args = _scrubbed(record, redacted, secrets)
        if record.exc_info and not record.exc_text:
            # A traceback quotes the values it passed through: formatted here, so that it
            # is scrubbed below and the handler's formatter prints that text.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        # Scrubbed even when an earlier handler formatted (and cached) it unfiltered.
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


def _scrubbed(
    record: logging.LogRecord, redacted: str, secrets: list[str]
) -> tuple[object, tuple[object, ...] | None]:
    """The record's message and arguments with the secrets taken out, its arguments kept
    apart where that is enough: uvicorn's access formatter unpacks them (a record whose
    arguments were dropped was lost, with a "--- Logging error ---" on stderr)."""
    if isinstance(record.msg, str) and isinstance(record.args, tuple):
        message = redact(record.msg, secrets)
        arguments = tuple(_redacted_argument(argument, secrets) for argument in record.args)
        try:
            if message % arguments == redacted:
                return message, arguments
        except (TypeError, ValueError):
            pass  # a redacted argument no longer fits its placeholder: the whole text below
    return redacted, None


def _redacted_argument(argument: object, secrets: list[str]) -> object:
    text = argument if isinstance(argument, str) else str(argument)
    scrubbed = redact(text, secrets)
    return argument if scrubbed == text else scrubbed


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret and anything shaped like an API key removed."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _KEY_IN_QUERY.sub(rf"\1{REDACTED}", text)
    return _KEY_PATTERN.sub(REDACTED, text)


def configure_logging(level: str, known_secrets: list[str]) -> None:
    """Plain timestamped lines on stderr; secrets filtered on every handler, uvicorn's
    access and error logs included."""
    logging.basicConfig(level=level, format=LOG_FORMAT, force=False)
    secret_filter = SecretRedactingFilter(known_secrets)
    handlers = [
        handler for name in ("", *SERVER_LOGGERS) for handler in logging.getLogger(name).handlers
    ]
    for handler in handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, SecretRedactingFilter)]
        handler.addFilter(secret_filter)
    logging.getLogger().setLevel(level)
