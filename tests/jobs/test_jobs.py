"""Background ingestion: 202 at once, progress while it runs, the same result as a sync upload."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.chat import parse_events
from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI
from tests.support.jobs import wait_for_job
from tests.support.servers import serve_app
from tests.support.uploads import long_text, upload


@pytest.fixture
async def worker_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its in-process worker, as `make run` starts it."""
    async with serve_app(settings.model_copy(update={"worker_in_process": True})) as client:
        yield client


async def test_an_async_upload_answers_202_then_finishes_in_the_background(
    worker_client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await worker_client.post("/api/collections", json={"name": "c", "id": "c"})

    response = await upload(
        worker_client, long_text(), "a.txt", route="/api/collections/c/documents?wait=false"
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] in ("pending", "processing", "completed")
    job = await wait_for_job(worker_client, body["job_id"])
    assert job["state"] == "succeeded" and job["attempts"] == 1
    document = (await worker_client.get(f"/api/collections/c/documents/{body['id']}")).json()
    assert document["status"] == "completed"
    assert job["chunks_made"] == job["chunks_embedded"] == job["chunks_stored"]
    assert job["chunks_stored"] == document["chunk_count"] > 1
    assert job["units_parsed"] >= 12
    assert await scalar(db, "SELECT count(*) FROM chunks") == document["chunk_count"]
    assert await scalar(db, "SELECT count(*) FROM document_files") == 0, "bytes freed when done"


async def test_prefer_respond_async_on_the_original_route(
    worker_client: httpx.AsyncClient,
) -> None:
    response = await worker_client.post(
        "/api/upload-document",
        files={"file": ("a.txt", long_text(2).encode())},
        data={"session_id": "s"},
        headers={"prefer": "respond-async"},
    )

    assert response.status_code == 202
    body = response.json()
    assert body["success"] is True and body["session_id"] == "s"
    assert "processing in the background" in body["message"]
    assert (await wait_for_job(worker_client, body["job_id"]))["state"] == "succeeded"


async def test_a_queued_job_waits_for_a_worker_with_its_file_stored(
    client: httpx.AsyncClient, settings: Settings, db: AsyncConnection
) -> None:
    response = await upload(
        client, long_text(), "a.txt", session_id="s", route="/api/upload-document?wait=false"
    )
    job_id = response.json()["job_id"]

    queued = (await client.get(f"/api/jobs/{job_id}")).json()
    assert queued["state"] == "queued"
    assert response.json()["status"] == "pending"
    assert await scalar(db, "SELECT count(*) FROM document_files") >= 1
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0

    async with serve_app(settings.model_copy(update={"worker_in_process": True})):
        done = await wait_for_job(client, job_id)

    assert done["state"] == "succeeded"


async def test_progress_streams_as_server_sent_events(
    worker_client: httpx.AsyncClient, upstream: FakeOpenAI, settings: Settings
) -> None:
    upstream.response_delay = 0.3
    response = await upload(
        worker_client,
        long_text(30),
        "big.txt",
        session_id="s",
        chunk_size=200,
        chunk_overlap=0,
        route="/api/upload-document?wait=false",
    )
    job_id = response.json()["job_id"]

    events = await worker_client.get(f"/api/jobs/{job_id}/events", timeout=60)

    parsed = parse_events(events.text)
    names = [name for name, _ in parsed]
    assert names[-1] == "succeeded"
    assert names.count("progress") >= 1
    embedded = [data["chunks_embedded"] for _, data in parsed]
    assert embedded == sorted(embedded), "progress only moves forward"
    assert parsed[-1][1]["chunks_stored"] == parsed[-1][1]["chunks_made"] > 0


async def test_a_failed_job_is_reported_and_the_document_can_be_retried(
    worker_client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    upstream.fail_next(503, times=3)
    response = await upload(
        worker_client, long_text(), "a.txt", session_id="s", route="/api/upload-document?wait=false"
    )

    failed = await wait_for_job(worker_client, response.json()["job_id"])
    document_id = response.json()["document_id"]

    assert failed["state"] == "failed"
    assert "embedding failed after 3 attempts" in failed["error"]
    assert await scalar(db, "SELECT status FROM documents") == "failed"
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0

    retried = await worker_client.post(f"/api/collections/s/documents/{document_id}/retry")
    assert retried.status_code == 202
    done = await wait_for_job(worker_client, retried.json()["id"])
    assert done["state"] == "succeeded"
    assert await scalar(db, "SELECT status FROM documents") == "completed"
    again = await worker_client.post(f"/api/collections/s/documents/{document_id}/retry")
    assert again.status_code == 409


async def test_a_bad_file_is_refused_before_anything_is_queued(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    response = await upload(
        client, b"\x89PNG\r\n\x1a\n" + bytes(64), "x.pdf", route="/api/upload-document?wait=false"
    )

    assert response.status_code == 415
    assert await scalar(db, "SELECT count(*) FROM ingestion_jobs") == 0


async def test_an_api_key_cannot_go_to_a_background_job(client: httpx.AsyncClient) -> None:
    response = await upload(
        client, "text", "a.txt", api_key="secret-key-1", route="/api/upload-document?wait=false"
    )

    assert response.status_code == 400
    assert "keys are never stored" in response.json()["detail"]
    assert "secret-key-1" not in response.text


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/jobs/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404
    assert json.loads(response.text)["detail"].startswith("job ")
