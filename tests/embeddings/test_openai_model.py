"""The OpenAI-compatible provider against the fake server: batching, concurrency, retries."""

import asyncio
import time

import numpy as np
import pytest

from app.core.config import Settings
from app.embeddings.errors import EmbeddingFailed
from app.embeddings.openai_model import (
    SMALLEST_SPLIT,
    OpenAIEmbeddingModel,
    batches,
    estimate_tokens,
)
from app.llm.client import LLMClients
from tests.support.fake_openai import FAULT_KINDS, FakeOpenAI, embed_text


def make_model(settings: Settings, **overrides: object) -> OpenAIEmbeddingModel:
    configured = settings.model_copy(update=overrides)
    return OpenAIEmbeddingModel(configured, LLMClients(configured))


def test_batches_respect_both_the_count_and_the_token_budget() -> None:
    texts = ["word " * 300] * 10  # about 500 estimated tokens each

    by_count = [len(r) for r in batches(texts, max_inputs=4, max_tokens=1_000_000)]
    by_tokens = [len(r) for r in batches(texts, max_inputs=2048, max_tokens=1200)]

    assert by_count == [4, 4, 2]
    assert by_tokens == [2, 2, 2, 2, 2]
    assert estimate_tokens("word " * 300) == 501


async def test_a_large_document_is_spread_over_every_concurrent_call(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    upstream.response_delay = 0.2  # so the calls overlap
    texts = [f"text number {n}" for n in range(1_001)]
    model = make_model(settings, embedding_batch_size=2048, embedding_concurrency=4)

    vectors = await model.aget_embeddings_batched(texts)

    # The calls go out together; they may arrive in any order.
    assert sorted(len(r.body["input"]) for r in upstream.requests) == [248, 251, 251, 251]
    assert upstream.max_in_flight == 4
    assert np.array_equal(vectors[1000], np.float32(embed_text("text number 1000", 384)))


async def test_a_small_document_is_not_split_below_the_smallest_call(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    texts = [f"text number {n}" for n in range(SMALLEST_SPLIT + 10)]

    await make_model(settings, embedding_concurrency=4).aget_embeddings_batched(texts)

    # The two calls go out at once: in either order.
    assert sorted(len(r.body["input"]) for r in upstream.requests) == [10, SMALLEST_SPLIT]


async def test_results_keep_the_order_of_the_inputs(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    texts = [f"text number {n}" for n in range(25)]
    model = make_model(settings, embedding_batch_size=4)

    vectors = await model.aget_embeddings_batched(texts)

    assert vectors.shape == (25, 384)
    expected = np.array([embed_text(t, 384) for t in texts], dtype=np.float32)
    assert np.allclose(vectors, expected, atol=1e-6)
    assert len(upstream.requests) == 7


async def test_batches_run_concurrently_up_to_the_limit(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    upstream.response_delay = 0.2
    model = make_model(settings, embedding_batch_size=1, embedding_concurrency=3)

    await model.aget_embeddings_batched([f"t{n}" for n in range(9)])

    assert upstream.max_in_flight == 3


async def test_retry_after_is_honoured(settings: Settings, upstream: FakeOpenAI) -> None:
    upstream.fail_next(429, retry_after="1")
    model = make_model(settings, embedding_retry_max_wait_seconds=5)

    started = time.monotonic()
    await model.aget_embedding("hello")

    assert time.monotonic() - started >= 1.0
    assert len(upstream.requests) == 2


async def test_a_bad_key_fails_at_once_without_retries(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    upstream.valid_keys = {"the-right-key"}
    model = make_model(settings)

    with pytest.raises(Exception, match="rejected the API key") as raised:
        await model.aget_embedding("hello")

    assert not isinstance(raised.value, EmbeddingFailed)
    assert len(upstream.requests) == 1


async def test_concurrency_shrinks_under_429s_and_grows_back(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    upstream.response_delay = 0.05
    model = make_model(
        settings,
        embedding_batch_size=1,
        embedding_concurrency=8,
        embedding_max_attempts=10,
        embedding_retry_max_wait_seconds=0.01,
    )
    upstream.fail_next(429, times=8, retry_after="0")

    vectors = await model.aget_embeddings_batched([f"text {n}" for n in range(60)])

    arrivals = upstream.in_flight_on_arrival
    assert len(vectors) == 60
    assert max(arrivals[:8]) == 8, "the first wave uses the configured concurrency"
    # Eight 429s halve the limit to 1; it then grows by one per run of successes.
    assert arrivals[8] == 1, "the provider said slow down: one request at a time"
    assert max(arrivals[8:16]) <= 4
    assert max(arrivals[-10:]) == 8, "back to the configured concurrency once calls succeed"


@pytest.mark.parametrize("kind", FAULT_KINDS)
async def test_every_kind_of_upstream_fault_is_retried_and_nothing_is_lost(
    settings: Settings, upstream: FakeOpenAI, kind: str
) -> None:
    upstream.fail_randomly(0.3, [kind], paths=["embeddings"], seed=7)
    model = make_model(
        settings,
        embedding_batch_size=2,
        embedding_max_attempts=10,
        upstream_timeout_seconds=0.5,
    )
    texts = [f"text number {n}" for n in range(30)]

    vectors = await model.aget_embeddings_batched(texts)

    expected = np.array([embed_text(t, 384) for t in texts], dtype=np.float32)
    assert np.allclose(vectors, expected, atol=1e-6)
    assert upstream.faults["embeddings"][kind] >= 1
    assert len(upstream.requests) == 15 + upstream.faults["embeddings"][kind]


@pytest.mark.parametrize("encoding", ["as_asked", "float"])
async def test_vectors_arrive_whole_as_base64_or_as_floats(
    settings: Settings, upstream: FakeOpenAI, encoding: str
) -> None:
    upstream.embedding_encoding = encoding  # "float": a server that ignores encoding_format
    texts = [f"text number {n}" for n in range(5)]

    vectors = await make_model(settings).aget_embeddings_batched(texts)

    assert vectors.dtype == np.float32
    expected = np.array([embed_text(t, 384) for t in texts], dtype=np.float32)
    assert np.array_equal(vectors, expected)


async def test_base64_vectors_cut_short_are_retried_then_fail_with_the_reason(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    upstream.embedding_encoding = "cut_base64"

    with pytest.raises(EmbeddingFailed) as raised:
        await make_model(settings).aget_embeddings_batched(["first text", "second text"])

    assert raised.value.message == (
        "embedding failed after 3 attempts: the model provider sent an invalid response "
        "(an embedding of 1534 bytes is not a whole number of float32s)"
    )
    assert len(upstream.requests) == 3


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("malformed_json", "the model provider sent an invalid response (its body is not valid"),
        ("wrong_count", "the model provider sent an invalid response (1 embeddings for 2 inputs)"),
        (
            "no_data",
            "the model provider sent an invalid response "
            "(its body has no list of indexed embeddings (`data`))",
        ),
        ("dropped_connection", "could not reach the model provider"),
    ],
)
async def test_an_upstream_that_keeps_answering_badly_fails_with_a_readable_reason(
    settings: Settings, upstream: FakeOpenAI, kind: str, reason: str
) -> None:
    upstream.fail_randomly(1.0, [kind])
    model = make_model(settings)

    with pytest.raises(EmbeddingFailed) as raised:
        await model.aget_embeddings_batched(["first text", "second text"])

    assert raised.value.message.startswith(f"embedding failed after 3 attempts: {reason}")
    assert len(upstream.requests) == 3


async def test_a_query_is_not_queued_behind_ingestion_batches(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    upstream.response_delay = 0.5
    model = make_model(settings, embedding_batch_size=1, embedding_concurrency=1)
    ingesting = asyncio.create_task(model.aget_embeddings_batched(["a", "b", "c"]))
    for _ in range(500):  # until the first batch is at the provider
        if upstream.in_flight_on_arrival:
            break
        await asyncio.sleep(0.01)

    vector = await model.aget_embedding("the user's question")
    await ingesting

    assert np.allclose(vector, embed_text("the user's question", 384), atol=1e-6)
    query = next(
        n for n, r in enumerate(upstream.requests) if r.body["input"] == ["the user's question"]
    )
    # It went out while a batch held the only slot (two in flight, itself counted),
    # not after the three batches.
    assert upstream.in_flight_on_arrival[query] == 2
    assert query == 1
