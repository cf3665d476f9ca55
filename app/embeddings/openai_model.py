"""Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint.

Texts go out in batches bounded by input count *and* estimated tokens,
several batches at once, each retried on 429, 5xx, timeouts, dropped
connections and unusable 200s (cut-off JSON, vectors missing or of the wrong
size) with exponential backoff and jitter, honouring `Retry-After`.
A batch that still fails raises EmbeddingFailed: the caller marks the
document failed; nothing is dropped silently.
"""

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
from collections.abc import Iterator, Sequence

import httpx
import numpy as np
import numpy.typing as npt
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.core.config import Settings
from app.embeddings.base import EmbeddedParts, EmbeddingModel, Vectors, as_vectors
from app.embeddings.errors import EmbeddingFailed
from app.embeddings.limits import AdaptiveLimit
from app.llm.client import LLMClients
from app.llm.errors import translate_upstream_error

logger = logging.getLogger(__name__)


class InvalidResponse(Exception):
    """A 200 that cannot be used: a proxy cut the body short, or vectors are missing.

    Retried like a 5xx: storing it would lose chunks or misalign them with
    their vectors.
    """


_RETRYABLE = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
    InvalidResponse,
)


def estimate_tokens(text: str) -> int:
    """An upper-bound guess without a tokenizer: about 3 UTF-8 bytes per token."""
    return len(text.encode()) // 3 + 1


def batches(texts: Sequence[str], max_inputs: int, max_tokens: int) -> Iterator[range]:
    """Index ranges of consecutive texts, each within both limits."""
    start, tokens = 0, 0
    for index, text in enumerate(texts):
        cost = estimate_tokens(text)
        if index > start and (index - start >= max_inputs or tokens + cost > max_tokens):
            yield range(start, index)
            start, tokens = index, 0
        tokens += cost
    if start < len(texts):
        yield range(start, len(texts))


# Below this many inputs a call's fixed costs (the round trip, the provider's queue)
# outweigh what splitting it further saves.
SMALLEST_SPLIT = 64


def inputs_per_call(count: int, max_inputs: int, concurrent_calls: int) -> int:
    """Inputs per call, so that a document fills every concurrent call.

    Filling calls in turn sent 2,730 chunks as 2,048 + 682: the document waited for
    the large call while three of the four slots idled. A provider's time grows with
    a call's inputs, so four calls of 683 answer sooner.
    """
    return min(max_inputs, max(math.ceil(count / concurrent_calls), SMALLEST_SPLIT))


class _WaitRetryAfter:
    """Wait what the server asks in Retry-After, else back off exponentially with jitter."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self.backoff = wait_exponential_jitter(multiplier=0.5, max=max_wait)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        response = getattr(error, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        try:
            return min(float(retry_after), self.max_wait) if retry_after else self.backoff(state)
        except ValueError:
            return self.backoff(state)


class OpenAIEmbeddingModel(EmbeddingModel):
    uses_api_keys = True

    def __init__(
        self,
        settings: Settings,
        clients: LLMClients,
        api_key: str | None = None,
        concurrency: AdaptiveLimit | None = None,
    ) -> None:
        super().__init__(settings.embedding_model, settings.embedding_dimensions)
        self._settings = settings
        self._clients = clients
        self._api_key = api_key
        # Shared by every view of this model, so the limit holds per process.
        self.concurrency = concurrency or AdaptiveLimit(settings.embedding_concurrency)

    def with_api_key(self, api_key: str | None) -> "OpenAIEmbeddingModel":
        if not api_key:
            return self
        return OpenAIEmbeddingModel(self._settings, self._clients, api_key, self.concurrency)

    async def embedded_parts(self, texts: Sequence[str]) -> EmbeddedParts:
        """One part per call, all sent at once (up to the concurrency limit), each
        yielded as its answer arrives, so that the caller can store it while the others
        are still out."""
        client = self._client()
        per_call = inputs_per_call(
            len(texts), self._settings.embedding_batch_size, self.concurrency.limit
        )

        async def part(batch: range) -> tuple[int, Vectors]:
            return batch.start, await self._embed_batch(client, [texts[i] for i in batch])

        calls = [
            asyncio.ensure_future(part(batch))
            for batch in batches(texts, per_call, self._settings.embedding_batch_tokens)
        ]
        try:
            for answered in asyncio.as_completed(calls):
                yield await answered
        finally:
            # A failed part, or a caller that stopped reading: the rest are not needed.
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)

    async def aget_embedding(self, text: str) -> npt.NDArray[np.float32]:
        """One query's vector, sent at once rather than queued behind ingestion batches.

        The concurrency limit paces bulk work (batches of up to 2,048 inputs); a search
        waiting its turn behind them took 1.2 s at p50 under the load run, against
        0.1 s for keyword search, which embeds nothing. Its 429s still slow the batches.
        """
        vectors = await self._embed_batch(self._client(), [text], limited=False)
        first: npt.NDArray[np.float32] = vectors[0]
        return first

    def _client(self) -> openai.AsyncOpenAI:
        # Retries are ours (with Retry-After and a budget), not the SDK's.
        return self._clients.for_key(self._api_key).with_options(max_retries=0)

    async def _embed_batch(
        self, client: openai.AsyncOpenAI, texts: list[str], *, limited: bool = True
    ) -> Vectors:
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda error: isinstance(error, _RETRYABLE)),
            wait=_WaitRetryAfter(self._settings.embedding_retry_max_wait_seconds),
            stop=stop_after_attempt(self._settings.embedding_max_attempts),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with self.concurrency if limited else contextlib.nullcontext():
                        return await self._request(client, texts)
        except _RETRYABLE as exc:
            reason = (
                f"the model provider sent an invalid response ({exc})"
                if isinstance(exc, InvalidResponse)
                else translate_upstream_error(exc, client.api_key).message
            )
            raise EmbeddingFailed(
                f"embedding failed after {self._settings.embedding_max_attempts} attempts: {reason}"
            ) from exc
        except openai.OpenAIError as exc:
            raise translate_upstream_error(exc, client.api_key) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _request(self, client: openai.AsyncOpenAI, texts: list[str]) -> Vectors:
        try:
            vectors = await self._call(client, texts)
        except openai.RateLimitError:
            self.concurrency.rate_limited()
            raise
        self.concurrency.succeeded()
        return vectors

    async def _call(self, client: openai.AsyncOpenAI, texts: list[str]) -> Vectors:
        body: dict[str, object] = {
            "model": self.model,
            "input": texts,
            # base64, decoded by one np.frombuffer per vector: as floats, the JSON is twice
            # the size and every vector becomes a Python list first.
            "encoding_format": "base64",
        }
        # Only OpenAI's text-embedding-3 models take `dimensions`; other servers may refuse it.
        if self.model.startswith("text-embedding-3"):
            body["dimensions"] = self.dimensions
        # The SDK's own transport, headers, timeouts and errors, without its typed
        # `embeddings.create()`: that walks every input string and builds a pydantic object
        # per vector, 0.3 s of the event loop for 2,730 vectors of 1,536 dimensions
        # (benchmark 1b, profiled), against 0.07 s to read the JSON and decode it here.
        response = await client.post("/embeddings", body=body, cast_to=httpx.Response)
        try:
            payload = response.json()
        except json.JSONDecodeError as exc:
            raise InvalidResponse("its body is not valid JSON") from exc
        try:
            return as_vectors(_embeddings_in(payload, len(texts)), self.dimensions)
        except (ValueError, TypeError) as exc:
            raise InvalidResponse(str(exc)) from exc


def _embeddings_in(payload: object, count: int) -> list[npt.NDArray[np.float32] | Sequence[float]]:
    """The embeddings of an OpenAI embeddings response, in input order."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not all(
        isinstance(item, dict) and isinstance(item.get("index"), int) for item in data
    ):
        raise ValueError("its body has no list of indexed embeddings (`data`)")
    ordered = sorted(data, key=lambda item: item["index"])
    if [item["index"] for item in ordered] != list(range(count)):
        raise ValueError(f"{len(ordered)} embeddings for {count} inputs")
    return [_decoded(item.get("embedding")) for item in ordered]


def _decoded(embedding: object) -> npt.NDArray[np.float32] | Sequence[float]:
    """A base64 embedding as float32s; a list of floats (a server that ignores
    `encoding_format`) as it came."""
    if isinstance(embedding, list):
        return embedding
    if not isinstance(embedding, str):
        raise ValueError(f"an embedding is a {type(embedding).__name__}, not base64 or a list")
    try:
        raw = base64.b64decode(embedding, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"an embedding is not valid base64 ({exc})") from exc
    if len(raw) % 4:
        raise ValueError(f"an embedding of {len(raw)} bytes is not a whole number of float32s")
    return np.frombuffer(raw, dtype="<f4")


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.info(
        "embedding request failed (attempt %d: %s); retrying in %.2f s",
        state.attempt_number,
        type(error).__name__,
        wait,
    )
