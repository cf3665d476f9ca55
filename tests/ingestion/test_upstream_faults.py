"""Ingestion through an embedding provider that fails a share of its calls, every way it can.

The fake upstream fails 20% of calls at random (seeded): 429 with Retry-After,
500, 503, hangs past the client's timeout, connections closed without an
answer, cut-off JSON and answers missing a vector. Every document must still
end `completed` with every chunk and the right vector for each: counted
against a clean chunking of the same text, not assumed.
"""

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.db import scalar
from tests.support.fake_openai import FAULT_KINDS, FakeOpenAI, embed_text
from tests.support.jobs import wait_for_job
from tests.support.servers import serve_app
from tests.support.settings import RAGSTORE, SERVER_KEY, with_faulty_provider
from tests.support.uploads import PROSE, clean_chunking, upload

DOCUMENTS = 50
COLLECTION = "faults"
# Sync and async, through the original route and the resource API, in turn.
ROUTES = [
    ("/api/upload-document", {"session_id": COLLECTION}),
    (f"/api/collections/{COLLECTION}/documents", {}),
    ("/api/upload-document?wait=false", {"session_id": COLLECTION}),
    (f"/api/collections/{COLLECTION}/documents?wait=false", {}),
]


def document_text(n: int) -> str:
    """About ten 500-character chunks, distinct from every other document's."""
    return "".join(f"Document {n}, part {p}. {PROSE}" for p in range(8))


@pytest.fixture
async def faulty_client(
    settings: Settings, upstream: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its worker, tiny embedding batches (more calls, more faults), a
    retry budget for a 20% failure rate, and a client timeout the hangs run past."""
    upstream.fail_randomly(0.2, seed=2024)
    async with serve_app(with_faulty_provider(settings), client_timeout=120) as client:
        yield client


async def ingest(client: httpx.AsyncClient, n: int) -> tuple[str, httpx.Response]:
    route, form = ROUTES[n % len(ROUTES)]
    response = await upload(client, document_text(n), f"doc{n}.txt", route=route, **form)
    assert response.status_code in (200, 201, 202), response.text
    body = response.json()
    if response.status_code == 202:
        assert (await wait_for_job(client, body["job_id"]))["state"] == "succeeded"
    return body.get("document_id") or body["id"], response


async def test_fifty_documents_through_a_provider_failing_one_call_in_five_lose_nothing(
    faulty_client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection, tmp_path: Path
) -> None:
    await faulty_client.post("/api/collections", json={"name": COLLECTION, "id": COLLECTION})
    at_once = asyncio.Semaphore(8)

    async def bounded(n: int) -> tuple[str, httpx.Response]:
        async with at_once:
            return await ingest(faulty_client, n)

    results = await asyncio.gather(*(bounded(n) for n in range(DOCUMENTS)))

    assert {response.status_code for _, response in results} == {200, 201, 202}
    statuses = await db.exec_driver_sql("SELECT status, count(*) FROM documents GROUP BY status")
    assert dict(statuses.all()) == {"completed": DOCUMENTS}
    for n, (document_id, _) in enumerate(results):
        rows = (
            await db.execute(
                text(
                    "SELECT text, embedding::text FROM chunks WHERE document_id = :id "
                    "ORDER BY chunk_index"
                ),
                {"id": document_id},
            )
        ).all()
        expected = clean_chunking(document_text(n), tmp_path)
        assert [chunk for chunk, _ in rows] == expected, f"doc{n}: chunks missing or out of order"
        stored = np.array([[float(v) for v in vector.strip("[]").split(",")] for _, vector in rows])
        wanted = np.array([embed_text(chunk, 384) for chunk, _ in rows])
        assert np.allclose(stored, wanted, atol=1e-6), f"doc{n}: a chunk has another's vector"
        chunk_count = await scalar(
            db, "SELECT chunk_count FROM documents WHERE id = :id", id=document_id
        )
        assert chunk_count == len(expected)
    faults = upstream.faults["embeddings"]
    assert set(faults) == set(FAULT_KINDS), f"every kind of fault happened: {dict(faults)}"
    calls = sum(1 for r in upstream.requests if r.path == "embeddings")
    assert sum(faults.values()) >= 0.1 * calls


async def wait_for_document(client: httpx.AsyncClient, document_id: str) -> dict[str, Any]:
    for _ in range(600):
        document = (
            await client.get(f"/api/collections/{COLLECTION}/documents/{document_id}")
        ).json()
        if document["status"] in ("completed", "failed"):
            return document  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"document {document_id} never finished")


async def test_a_provider_down_past_the_retry_budget_fails_documents_that_can_be_retried(
    faulty_client: httpx.AsyncClient,
    upstream: FakeOpenAI,
    db: AsyncConnection,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    upstream.fail_randomly(1.0, paths=["embeddings"])
    await faulty_client.post("/api/collections", json={"name": COLLECTION, "id": COLLECTION})

    sync = await upload(faulty_client, document_text(1), "sync.txt", session_id=COLLECTION)
    queued = await upload(
        faulty_client,
        document_text(2),
        "queued.txt",
        route=f"/api/collections/{COLLECTION}/documents?wait=false",
    )
    job = await wait_for_job(faulty_client, queued.json()["job_id"])

    assert sync.status_code == 502
    assert "marked failed" in sync.json()["detail"]
    assert job["state"] == "failed"
    documents = (await faulty_client.get(f"/api/collections/{COLLECTION}/documents")).json()
    for document in documents["data"]:
        assert document["status"] == "failed"
        assert document["chunk_count"] == 0
        assert document["error"].startswith("embedding failed after 10 attempts: ")
        for leak in (SERVER_KEY, "Traceback", 'File "', "random fault"):
            assert leak not in document["error"]
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0
    assert await scalar(db, "SELECT count(*) FROM processed_chunks") == 0

    upstream.fail_randomly(0.0)
    sync_id = await scalar(db, "SELECT id::text FROM documents WHERE filename = 'sync.txt'")
    queued_id = queued.json()["id"]
    assert sync_id in sync.json()["detail"]
    retried = await faulty_client.post(f"/api/collections/{COLLECTION}/documents/{sync_id}/retry")
    from_cli = await asyncio.to_thread(
        subprocess.run,
        [RAGSTORE, "documents", "retry-failed", "-c", COLLECTION],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert retried.status_code == 202
    assert from_cli.returncode == 0, from_cli.stderr
    assert f"queued 1 failed documents of {COLLECTION}" in from_cli.stdout
    for document_id, n in ((sync_id, 1), (queued_id, 2)):
        document = await wait_for_document(faulty_client, document_id)
        assert document["status"] == "completed"
        assert document["error"] is None
        expected = clean_chunking(document_text(n), tmp_path)
        assert document["chunk_count"] == len(expected)
        stored = await scalar(
            db, "SELECT count(*) FROM chunks WHERE document_id = :id", id=document_id
        )
        assert stored == len(expected)
