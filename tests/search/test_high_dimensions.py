"""Vectors of 3,072 dimensions (OpenAI's text-embedding-3-large): past the 2,000 that
pgvector's HNSW index takes of `vector`. From 1,024 dimensions the index holds
binary-quantized vectors; every search mode uses it, re-ranks its candidates by the full
vectors and scores in full precision."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from tests.support.db import create_database, vector_index_built
from tests.support.fake_openai import FakeOpenAI, embed_text
from tests.support.servers import serve_app
from tests.support.settings import APP_SETTINGS, SERVER_KEY, base_settings
from tests.support.uploads import upload

LARGE = {"embedding_model": "text-embedding-3-large", "embedding_dimensions": 3072}
PARAGRAPHS = [
    "Supersonic inlets swallow their shock at the design Mach number.",
    "Laminar boundary layers separate early under adverse pressure gradients.",
    "Panel flutter of thin plates grows with dynamic pressure.",
]


@pytest.fixture
def large_settings(postgres: EmbeddedPostgres, upstream: FakeOpenAI) -> Iterator[Settings]:
    """A database migrated for 3,072-dimensional vectors, and the app's settings for it."""
    name = create_database(postgres)
    # With three rows, scanning and sorting them is cheaper than any index: with both
    # discouraged, the planner uses the HNSW index wherever the statement's expression
    # matches the index's, so its scan count shows that the searches' SQL does.
    postgres.psql(
        f"ALTER DATABASE {name} SET enable_seqscan = off;"
        f"ALTER DATABASE {name} SET enable_sort = off;"
    )
    url = postgres.url(name)
    settings = base_settings(
        database_url=url,
        openai_base_url=upstream.url,
        openai_api_key=SERVER_KEY,
        **{**APP_SETTINGS, **LARGE},
    )
    migrate.upgrade(settings, url)
    yield settings
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


async def _index_facts(url: str, collection_id: str = "wide") -> tuple[str, int]:
    """The HNSW index of the collection's partition: its definition, and how many scans it
    has served."""
    index = "chunk_partition_name(:id) || '_embedding_hnsw'"
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        definition = await connection.scalar(
            text(f"SELECT pg_get_indexdef(CAST({index} AS regclass))"), {"id": collection_id}
        )
        scans = await connection.scalar(
            text(f"SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = {index}"),
            {"id": collection_id},
        )
    await engine.dispose()
    return str(definition), int(scans or 0)


async def _search(client: httpx.AsyncClient, body: dict[str, object]) -> list[dict[str, object]]:
    answer = await client.post("/api/collections/wide/search", json=body)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, object]] = answer.json()["results"]
    return results


async def test_vectors_past_2000_dimensions_are_indexed_as_halfvec_and_searched(
    large_settings: Settings, upstream: FakeOpenAI
) -> None:
    assert large_settings.database_url
    async with serve_app(large_settings) as client:
        health = (await client.get("/api/health")).json()
        created = await client.post("/api/collections", json={"id": "wide", "name": "Wide"})
        for number, paragraph in enumerate(PARAGRAPHS):
            stored = await upload(
                client,
                paragraph,
                f"note-{number}.txt",
                route="/api/collections/wide/documents",
                metadata=f'{{"number": {number}}}',
            )
            assert stored.status_code == 201, stored.text
        engine = create_async_engine(large_settings.database_url)
        async with engine.connect() as connection:
            await vector_index_built(connection, "wide")
        await engine.dispose()

        question = PARAGRAPHS[1]
        by_mode = {
            mode: await _search(client, {"query": question, "mode": mode, "k": 3})
            for mode in ("vector", "keyword", "hybrid")
        }
        filtered = await _search(
            client,
            {
                "query": question,
                "mode": "vector",
                "k": 3,
                "filters": {"type": "ne", "key": "number", "value": 1},
            },
        )

    # Server processes report their statistics at most once a second.
    for _ in range(50):
        definition, scans = await _index_facts(large_settings.database_url)
        if scans >= 2:
            break
        await asyncio.sleep(0.1)
    assert "(binary_quantize(embedding))::bit(3072)) bit_hamming_ops" in definition
    assert scans >= 2  # the vector search and hybrid's vector list went through it
    assert health["embedding_dimensions"] == 3072
    assert created.status_code == 201
    assert all(
        request.body.get("dimensions") == 3072
        for request in upstream.requests
        if request.path == "embeddings"
    )
    for mode, results in by_mode.items():
        assert results[0]["text"] == question, mode
    # The same text: full-precision cosine similarity 1, not a Hamming distance.
    assert by_mode["vector"][0]["score"] == pytest.approx(1.0, abs=1e-6)
    assert [r["score"] for r in by_mode["vector"]] == sorted(
        (r["score"] for r in by_mode["vector"]), reverse=True
    )
    assert len(filtered) == 2
    assert question not in {result["text"] for result in filtered}


def _words_of_sign(positive: bool, count: int) -> list[str]:
    """Words whose hashed-word vector (the fake upstream's) is one +1 or one -1, each in a
    slot of its own: binary quantization keeps a +1 as a 1 bit and a -1 as a 0 bit."""
    words: list[str] = []
    slots: set[int] = set()
    for number in range(10_000):
        word = f"w{number}"
        vector = embed_text(word, 3072)
        slot = max(range(3072), key=lambda i: abs(vector[i]))
        if (vector[slot] > 0) == positive and slot not in slots:
            words.append(word)
            slots.add(slot)
            if len(words) == count:
                return words
    raise AssertionError("not enough words")


async def test_the_quantized_index_candidates_are_re_ranked_by_the_full_vectors(
    large_settings: Settings,
) -> None:
    """A text holding every query word plus many words that quantize to 0 bits is at Hamming
    distance 0 from the question but far in cosine; a text missing one query word is one
    bit away but nearer in cosine. The nearest by the full vectors must win."""
    asked = _words_of_sign(True, 3)
    padding = [word for word in _words_of_sign(False, 40) if word not in asked][:20]
    same_bits = " ".join(asked + padding)
    nearer = " ".join(asked[:2])
    async with serve_app(large_settings) as client:
        await client.post("/api/collections", json={"id": "wide", "name": "Wide"})
        for name, content in (("same-bits.txt", same_bits), ("nearer.txt", nearer)):
            stored = await upload(client, content, name, route="/api/collections/wide/documents")
            assert stored.status_code == 201, stored.text
        results = await _search(client, {"query": " ".join(asked), "mode": "vector", "k": 1})

    assert [result["filename"] for result in results] == ["nearer.txt"]
