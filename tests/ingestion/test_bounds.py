"""Bounds on what one upload may cost, and values that used to reach the driver unchecked:
each a 422 naming the problem, nothing stored, and the server keeps serving."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import serve_app
from tests.support.uploads import long_text, upload

TABLES = ("documents", "chunks", "document_files", "ingestion_jobs", "processed_documents")
ROUTES = ("/api/upload-document", "/api/collections/s/documents")


async def stored_rows(db: AsyncConnection) -> dict[str, int]:
    return {table: await scalar(db, f"SELECT count(*) FROM {table}") for table in TABLES}


@pytest.fixture
async def collection(client: httpx.AsyncClient) -> None:
    await client.post("/api/collections", json={"name": "s", "id": "s"})


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.usefixtures("collection")
async def test_a_chunk_size_below_the_floor_is_refused(
    client: httpx.AsyncClient, db: AsyncConnection, route: str
) -> None:
    answer = await upload(
        client, long_text(), route=route, session_id="s", chunk_size=10, chunk_overlap=0
    )

    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "chunk_size (10) must be at least 100 characters (RAGSTORE_MIN_CHUNK_SIZE)"
    )
    assert set((await stored_rows(db)).values()) == {0}


@pytest.mark.parametrize("route", ROUTES)
async def test_a_document_over_the_chunk_cap_is_refused_before_it_is_embedded(
    settings: Settings, upstream: FakeOpenAI, db: AsyncConnection, route: str
) -> None:
    capped = settings.model_copy(update={"max_chunks_per_document": 5})
    async with serve_app(capped) as client:
        await client.post("/api/collections", json={"name": "s", "id": "s"})
        answer = await upload(client, long_text(40), route=route, session_id="s")
        healthy = await client.get("/api/health")

    assert answer.status_code == 422
    assert "makes more than 5 chunks" in answer.json()["detail"]
    assert healthy.status_code == 200
    assert not [r for r in upstream.requests if r.path == "embeddings"]
    assert set((await stored_rows(db)).values()) == {0}


async def test_metadata_copied_into_every_chunk_is_bounded(
    settings: Settings, db: AsyncConnection
) -> None:
    # 10 KB of metadata in a 1 MB budget: at most 104 chunks.
    small_budget = settings.model_copy(update={"max_copied_metadata_mb": 1.0})
    metadata = '{"note": "' + "x" * 10_000 + '"}'
    async with serve_app(small_budget) as client:
        answer = await upload(client, long_text(300), session_id="s", metadata=metadata)

    assert answer.status_code == 422
    assert "makes more than 104 chunks" in answer.json()["detail"]
    assert (await stored_rows(db))["chunks"] == 0


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.usefixtures("collection")
async def test_metadata_with_a_number_too_long_for_python_is_a_422(
    client: httpx.AsyncClient, db: AsyncConnection, route: str
) -> None:
    answer = await upload(
        client, long_text(2), route=route, session_id="s", metadata='{"n": ' + "9" * 4301 + "}"
    )

    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("metadata holds a number too long to read")
    assert (await client.get("/api/health")).status_code == 200
    assert set((await stored_rows(db)).values()) == {0}


@pytest.mark.parametrize("session_id", ["a/b", "..", "-x", "x" * 129, "a\x00b"])
async def test_the_original_upload_applies_the_collection_id_rule_to_session_id(
    client: httpx.AsyncClient, db: AsyncConnection, session_id: str
) -> None:
    answer = await upload(client, long_text(2), session_id=session_id)

    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body.session_id: String should match pattern")
    assert await scalar(db, "SELECT count(*) FROM collections") == 0
