"""The model's streamed answer, adapted: tokens, usage, or a break-off the caller can show."""

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from app.llm.errors import translate_upstream_error, upstream_errors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class StreamFailed:
    """The provider broke off after the first token; only the stream can say so."""

    detail: str


StreamPart = str | Usage | StreamFailed


async def stream_chat(
    client: openai.AsyncOpenAI,
    model: str,
    messages: list[ChatCompletionMessageParam],
    include_usage: bool = False,
) -> AsyncIterator[StreamPart]:
    """Open the upstream stream and return its parts as they arrive.

    The request is sent before this returns, so a refused key, a rate limit or
    an unreachable provider raises here, while the caller can still answer
    with a status code. A failure after that ends the stream with a
    StreamFailed part (and a log line).
    """
    async with upstream_errors(client.api_key):
        stream = await client.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True} if include_usage else openai.omit,
        )
    return _parts(stream, client.api_key)


async def _parts(
    stream: openai.AsyncStream[ChatCompletionChunk], sent_key: str
) -> AsyncIterator[StreamPart]:
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
            if chunk.usage is not None:
                yield Usage(
                    chunk.usage.prompt_tokens,
                    chunk.usage.completion_tokens,
                    chunk.usage.total_tokens,
                )
    except (openai.OpenAIError, json.JSONDecodeError) as exc:
        # The SDK decodes each event itself and lets a cut-off one through unwrapped.
        logger.warning("chat stream broke off: %s: %s", type(exc).__name__, exc)
        reason = (
            translate_upstream_error(exc, sent_key).message
            if isinstance(exc, openai.OpenAIError)
            else "the model provider sent an invalid response"
        )
        yield StreamFailed(f"the answer broke off: {reason}")
    finally:
        await stream.close()


async def single_answer(text: str) -> AsyncIterator[StreamPart]:
    """A fixed answer in the shape of a stream (no provider call)."""
    yield text
