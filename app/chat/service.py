"""Streamed chat completions through any OpenAI-compatible API."""

import logging
from collections.abc import AsyncIterator

import openai
from openai.types.chat import ChatCompletionMessageParam

from app.llm.errors import upstream_errors

logger = logging.getLogger(__name__)


async def stream_chat(
    client: openai.AsyncOpenAI, model: str, messages: list[ChatCompletionMessageParam]
) -> AsyncIterator[str]:
    """Open the upstream stream and return its tokens as they arrive.

    The request is sent before this returns, so a refused key, a rate limit or
    an unreachable provider raises here, while the caller can still answer
    with a status code. A failure after the first token can only end the
    stream: it is logged and the stream closes.
    """
    async with upstream_errors():
        stream = await client.chat.completions.create(model=model, messages=messages, stream=True)
    return _tokens(stream)


async def _tokens(
    stream: openai.AsyncStream[openai.types.chat.ChatCompletionChunk],
) -> AsyncIterator[str]:
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
    except openai.OpenAIError as exc:
        logger.warning("chat stream broke off: %s: %s", type(exc).__name__, exc)
    finally:
        await stream.close()
