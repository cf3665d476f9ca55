"""The original app's Python API, persistent now: facades over the same services."""

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.core.errors import Conflict
from app.python_api import DocumentProcessor, EmbeddingModel, VectorDatabase
from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI, embed_text
from tests.support.files import write_pdf
from tests.support.uploads import long_text, upload


def embedding_calls(upstream: FakeOpenAI) -> int:
    return sum(1 for request in upstream.requests if request.path == "embeddings")


async def test_document_processor_stores_a_file_once(
    settings: Settings, upstream: FakeOpenAI, tmp_path: Path, db: AsyncConnection
) -> None:
    pdf = write_pdf(
        tmp_path / "guide.pdf", ["First page about pgvector.", "Second page about HNSW."]
    )

    async with DocumentProcessor(chunk_size=500, overlap=50, settings=settings) as processor:
        first = await processor.process_file(pdf)
        again = await processor.process_file(pdf)

    assert first.status == "completed" and first.chunk_count >= 1
    assert first.collection_id == "default"
    assert again.already_processed
    assert embedding_calls(upstream) == 1
    # Both short pages fit one chunk, which says where it starts and ends.
    pages = await scalar(
        db, "SELECT array_agg(metadata->>'page' || '-' || (metadata->>'page_end')) FROM chunks"
    )
    assert pages == ["1-2"]


async def test_document_processor_reuses_the_cache_across_collections(
    settings: Settings, upstream: FakeOpenAI, tmp_path: Path
) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text(long_text())
    async with DocumentProcessor(collection="a", settings=settings) as processor:
        await processor.process_file(text_file)
    upstream.requests.clear()

    async with DocumentProcessor(collection="b", settings=settings) as processor:
        copied = await processor.process_file(text_file)

    assert copied.from_cache and not copied.already_processed
    assert embedding_calls(upstream) == 0


async def test_document_processor_rejects_invalid_chunking(settings: Settings) -> None:
    with pytest.raises(Exception, match="chunk_overlap"):
        DocumentProcessor(chunk_size=100, overlap=100, settings=settings)


async def test_embedding_model_embeds_one_and_many(settings: Settings) -> None:
    model = EmbeddingModel(settings)
    try:
        one = await model.aget_embedding("hello world")
        many = await model.aget_embeddings_batched(["hello world", "other words"])
    finally:
        await model.close()

    assert one.shape == (384,)
    assert many.shape == (2, 384)
    assert np.allclose(one, many[0])
    assert np.allclose(one, embed_text("hello world", 384), atol=1e-6)


async def test_vector_database_finds_what_was_inserted_highest_first(settings: Settings) -> None:
    texts = ["pgvector stores vectors", "bananas are yellow", "postgres full text search"]

    async with VectorDatabase("vectors", settings=settings) as vectors:
        assert await vectors.ainsert_batch(texts) == 3
        await vectors.ainsert("an apple a day", embed_text("an apple a day", 384))
        hits = await vectors.asearch_by_text("bananas are yellow", k=2)
        by_vector = await vectors.asearch(embed_text("an apple a day", 384), k=1)

    assert hits[0][0] == "bananas are yellow"
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert hits[0][1] >= hits[1][1]
    assert by_vector == [("an apple a day", pytest.approx(1.0, abs=1e-5))]


async def test_vector_database_sync_methods_work_without_an_event_loop(settings: Settings) -> None:
    def script() -> list[tuple[str, float]]:
        vectors = VectorDatabase("sync", settings=settings)
        try:
            vectors.insert("first text", embed_text("first text", 384))
            vectors.insert("second text", embed_text("second text", 384))
            return vectors.search(embed_text("second text", 384), k=1)
        finally:
            vectors.close()

    hits = await asyncio.to_thread(script)

    assert hits[0][0] == "second text"


async def test_vector_database_sync_methods_refuse_a_running_loop(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="await the a-prefixed method"):
        VectorDatabase("x", settings=settings).search([0.0] * 384)


async def test_inserted_texts_are_a_texts_document_with_no_file_behind_it(
    settings: Settings, client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    texts = ["pgvector stores vectors", "größer als"]
    async with VectorDatabase("vectors", settings=settings) as vectors:
        await vectors.ainsert_batch(texts)
        await vectors.ainsert("one more")

    listed = (await client.get("/api/collections/vectors/documents")).json()["data"]
    assert len(listed) == 1
    document = listed[0]
    assert document["filename"] == "vectordatabase" and document["source"] == "texts"
    assert document["content_type"] == "text/plain" and document["status"] == "completed"
    assert document["content_sha256"] is None and document["chunk_size"] is None
    assert document["chunk_count"] == 3
    assert document["size_bytes"] == sum(len(t.encode()) for t in [*texts, "one more"])
    assert await scalar(db, "SELECT count(*) FROM documents WHERE cache_key IS NULL") == 1


async def test_an_uploaded_file_named_like_the_texts_document_is_kept_apart(
    settings: Settings, client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """An upload of that name replaces inserted texts (the last write of a name wins);
    texts are never appended to an uploaded file."""
    async with VectorDatabase("mixed", settings=settings) as vectors:
        await vectors.ainsert("an inserted text")
        uploaded = await upload(client, long_text(), "vectordatabase", session_id="mixed")
        with pytest.raises(Conflict, match="uploaded file named 'vectordatabase'"):
            await vectors.ainsert("another text")

    assert uploaded.status_code == 200
    document = (await client.get("/api/collections/mixed/documents")).json()["data"][0]
    assert document["source"] == "upload" and document["content_sha256"]
    texts = await scalar(db, "SELECT array_agg(text) FROM chunks WHERE text LIKE '%inserted%'")
    assert texts is None


async def test_vector_database_queries_like_the_http_api(settings: Settings) -> None:
    async with VectorDatabase("q", settings=settings) as vectors:
        await vectors.ainsert_batch(["pgvector stores vectors", "bananas are yellow"])
        hits = await vectors.aquery("bananas", k=2, mode="keyword")
        filtered = await vectors.aquery("bananas", mode="vector", filters={"chunk_index": 0})
        with pytest.raises(ValueError, match="invalid filters"):
            await vectors.aquery("bananas", filters={"chunk_index": {"gte": 0}})

    assert [hit.text for hit in hits] == ["bananas are yellow"]
    assert hits[0].filename == "vectordatabase" and hits[0].metadata["chunk_index"] == 1
    assert [hit.text for hit in filtered] == ["pgvector stores vectors"]


async def test_a_search_without_a_vector_says_what_it_needs(settings: Settings) -> None:
    async with VectorDatabase("v", settings=settings) as vectors:
        with pytest.raises(ValueError, match="a vector of 384 finite numbers, got None"):
            await vectors.asearch(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"got shape \(3,\)"):
            await vectors.asearch([1.0, 2.0, 3.0])


async def test_the_embedding_model_embeds_synchronously_too(settings: Settings) -> None:
    def script() -> tuple[object, object]:
        with EmbeddingModel(settings) as model:
            return model.get_embedding("hello world"), model.get_embeddings(["a", "b"])

    one, many = await asyncio.to_thread(script)

    assert np.allclose(one, embed_text("hello world", 384), atol=1e-6)  # type: ignore[arg-type]
    assert many.shape == (2, 384)  # type: ignore[attr-defined]
