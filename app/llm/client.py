"""OpenAI-compatible clients: one connection pool, the key chosen per request."""

from typing import Annotated

import openai
from pydantic import AfterValidator

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.logging import request_api_key

# The SDK refuses to build a client without a key; requests may still bring theirs.
_NO_SERVER_KEY = "no-server-key"


def _accept_request_key(key: str) -> str:
    # The key travels in the Authorization header, which carries printable ASCII only (as
    # every provider's keys are); anything else failed deep in the HTTP client, as a 500.
    if not (key.isascii() and key.isprintable()):
        raise ValueError("an API key has printable ASCII characters only")
    # Registered for log scrubbing here, where every request key arrives, so that no
    # route can forget to (the request's own task and the tasks it starts see it).
    request_api_key.set(key)
    return key


# A request's own provider key (the original app's `api_key`): every route that takes
# one declares it with this type, in a body or a form.
RequestApiKey = Annotated[str, AfterValidator(_accept_request_key)]


class LLMClients:
    """Hands out an AsyncOpenAI client for a request's key, or the server's."""

    def __init__(self, settings: Settings) -> None:
        server_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        self._server_key = server_key
        self._client = openai.AsyncOpenAI(
            api_key=server_key or _NO_SERVER_KEY,
            base_url=settings.openai_base_url,
            timeout=settings.upstream_timeout_seconds,
            max_retries=settings.upstream_max_retries,
        )

    def for_key(self, request_key: str | None) -> openai.AsyncOpenAI:
        """The client for `request_key` (the original app's per-request key) or the server key."""
        if request_key:
            return self._client.with_options(api_key=request_key)
        if not self._server_key:
            raise Unauthorized(
                "no OpenAI API key: send `api_key` in the request or set OPENAI_API_KEY on "
                "the server"
            )
        return self._client

    async def close(self) -> None:
        await self._client.close()
