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
REDACTED = "[REDACTED]"


class SecretRedactingFilter(logging.Filter):
    """Replaces known secrets and key-shaped strings in every log record."""

    def __init__(self, known_secrets: list[str]) -> None:
        super().__init__()
        self._known_secrets = [secret for secret in known_secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message, [*self._known_secrets, request_api_key.get() or ""])
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret and anything shaped like an API key removed."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _KEY_PATTERN.sub(REDACTED, text)


def configure_logging(level: str, known_secrets: list[str]) -> None:
    """Plain timestamped lines on stderr; secrets filtered on every handler."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=False
    )
    secret_filter = SecretRedactingFilter(known_secrets)
    for handler in logging.getLogger().handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, SecretRedactingFilter)]
        handler.addFilter(secret_filter)
    logging.getLogger().setLevel(level)
