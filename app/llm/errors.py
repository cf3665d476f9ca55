"""Upstream (OpenAI-compatible API) failures, translated into ragstore's errors.

Upstream messages are never passed through as they are: OpenAI's 401 message
quotes part of the key, and a proxy may echo headers. Only a scrubbed excerpt
of the upstream message is shown, for the statuses where it helps the caller.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai

from app.core.errors import (
    AppError,
    BadGateway,
    BadRequest,
    GatewayTimeout,
    TooManyRequests,
    Unauthorized,
)
from app.core.logging import redact, request_api_key

logger = logging.getLogger(__name__)

_MAX_UPSTREAM_MESSAGE = 300


def _upstream_message(exc: openai.APIStatusError, sent_key: str) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message or exc.message)[:_MAX_UPSTREAM_MESSAGE]
    return redact(text, [request_api_key.get() or "", sent_key])


def translate_upstream_error(exc: openai.OpenAIError, sent_key: str) -> AppError:
    """The AppError a caller should see for an upstream failure; `sent_key` is the key the
    failed call carried (the request's own or the server's), scrubbed from any message
    shown. It is passed in because openai 3.x drops the Authorization header from the
    request an exception keeps."""
    if isinstance(exc, openai.APITimeoutError):
        return GatewayTimeout("the model provider did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return BadGateway("could not reach the model provider")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return Unauthorized("the model provider rejected the API key")
    if isinstance(exc, openai.RateLimitError):
        retry_after = exc.response.headers.get("retry-after")
        return TooManyRequests(
            "the model provider is rate limiting requests; try again later",
            headers={"Retry-After": retry_after} if retry_after else None,
        )
    if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
        return BadRequest(
            f"the model provider refused the request ({exc.status_code}): "
            f"{_upstream_message(exc, sent_key)}"
        )
    if isinstance(exc, openai.APIStatusError):
        return BadGateway(f"the model provider failed ({exc.status_code})")
    return BadGateway("the model provider sent an invalid response")


@asynccontextmanager
async def upstream_errors(sent_key: str) -> AsyncIterator[None]:
    """Raise the translated AppError for any upstream failure inside the block."""
    try:
        yield
    except openai.OpenAIError as exc:
        logger.warning("upstream error: %s: %s", type(exc).__name__, exc)
        raise translate_upstream_error(exc, sent_key) from exc
