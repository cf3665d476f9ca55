"""Uploads, re-uploads, deletes, retries and failures racing each other, made deterministic.

The fake upstream holds the embedding requests of one upload (a marker in its
text) at a Gate until the test has done the racing action, then lets them
through or fails them. After each race the database's invariants are checked:
counts match, nothing half-built, no job left running, nothing deleted back.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.chat import parse_events
from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI
from tests.support.invariants import settled_violations, temp_files
from tests.support.jobs import wait_for_job
from tests.support.servers import serve_app
from tests.support.uploads import long_text, upload

ASYNC = "/api/upload-document?wait=false"


def text_with(marker: str) -> str:
    """A few chunks of prose, every one of them carrying the marker."""
    return "".join(f"{marker} part {n}. {long_text(1)}" for n in range(3))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its in-process worker (two jobs at a time)."""
    with_worker = settings.model_copy(update={"worker_in_process": True, "worker_concurrency": 2})
    async with serve_app(with_worker, client_timeout=60) as client:
        yield client


@pytest.fixture(autouse=True)
def no_temp_files_left() -> Iterator[None]:
    before = temp_files()
    yield
    assert temp_files() - before == set()


async def document_row(db: AsyncConnection) -> dict[str, Any] | None:
    row = (
        await db.exec_driver_sql(
            "SELECT id::text, status, content_sha256, chunk_count, generation FROM documents"
        )
    ).one_or_none()
    await db.commit()
    return None if row is None else dict(row._mapping)


async def chunk_texts(db: AsyncConnection) -> list[str]:
    texts = list((await db.exec_driver_sql("SELECT text FROM chunks")).scalars())
    await db.commit()
    return texts


async def test_a_failing_upload_never_overwrites_a_newer_one_that_completed(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    gate = upstream.gate("ALPHA", fail_status=500)
    failing = asyncio.create_task(upload(app, text_with("ALPHA"), session_id="s"))
    await gate.until_arrived()

    newer = await upload(app, text_with("BETA"), session_id="s")
    gate.release()
    failed = await failing

    assert newer.status_code == 200, newer.text
    assert failed.status_code == 502
    assert "a newer version of the document, or its deletion, came first" in (
        failed.json()["detail"].lower()
    )
    document = await document_row(db)
    assert document is not None
    assert document["status"] == "completed"
    assert document["id"] == newer.json()["document_id"]
    assert all("BETA" in text for text in await chunk_texts(db))
    assert await settled_violations(db) == {}


async def test_a_collection_deleted_while_an_upload_fails_stays_deleted(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    await app.post("/api/collections", json={"name": "c", "id": "c"})
    gate = upstream.gate("ALPHA", fail_status=500)
    failing = asyncio.create_task(upload(app, text_with("ALPHA"), session_id="c"))
    await gate.until_arrived()

    deleted = await app.delete("/api/collections/c")
    gate.release()
    failed = await failing

    assert deleted.status_code == 204
    assert failed.status_code == 502
    assert await scalar(db, "SELECT count(*) FROM documents") == 0
    assert await scalar(db, "SELECT count(*) FROM document_files") == 0
    assert await settled_violations(db, deleted_collections=["c"]) == {}


async def test_a_collection_deleted_while_an_upload_succeeds_stays_deleted(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    await app.post("/api/collections", json={"name": "c", "id": "c"})
    gate = upstream.gate("ALPHA")
    uploading = asyncio.create_task(upload(app, text_with("ALPHA"), session_id="c"))
    await gate.until_arrived()

    deleted = await app.delete("/api/collections/c")
    gate.release()
    answer = await uploading

    assert deleted.status_code == 204
    assert answer.status_code == 409
    assert answer.json() == {"detail": "collection 'c' was deleted while this upload was processed"}
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0
    assert await settled_violations(db, deleted_collections=["c"]) == {}


async def test_a_re_upload_racing_a_delete_of_its_document_is_a_409_not_a_500(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    first = await upload(app, text_with("FIRST"), session_id="s")
    gate = upstream.gate("SECOND")
    reuploading = asyncio.create_task(upload(app, text_with("SECOND"), session_id="s"))
    await gate.until_arrived()

    deleted = await app.delete(f"/api/collections/s/documents/{first.json()['document_id']}")
    gate.release()
    answer = await reuploading

    assert deleted.status_code == 204
    assert answer.status_code == 409
    assert "was deleted while this upload was processed" in answer.json()["detail"]
    assert await document_row(db) is None
    assert await settled_violations(db) == {}


@pytest.mark.parametrize("deleted", ["document", "collection"])
async def test_a_delete_during_a_background_job_wins_and_the_job_ends_cancelled(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection, deleted: str
) -> None:
    gate = upstream.gate("ALPHA")
    accepted = await upload(app, text_with("ALPHA"), session_id="s", route=ASYNC)
    assert accepted.status_code == 202
    job_id, document_id = accepted.json()["job_id"], accepted.json()["document_id"]
    await gate.until_arrived()

    path = "/api/collections/s" + (f"/documents/{document_id}" if deleted == "document" else "")
    answer = await app.delete(path)
    gate.release()
    job = await wait_for_job(app, job_id, states=("succeeded", "failed", "cancelled"))

    assert answer.status_code == 204
    assert job["state"] == "cancelled"
    assert job["document_id"] is None
    gone = ["s"] if deleted == "collection" else []
    assert await settled_violations(db, deleted_collections=gone) == {}
    assert await document_row(db) is None
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0


async def test_the_later_of_two_background_uploads_of_one_name_wins(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    gate = upstream.gate("ALPHA")
    earlier = await upload(app, text_with("ALPHA"), session_id="s", route=ASYNC)
    await gate.until_arrived()
    later = await upload(app, text_with("BETA"), session_id="s", route=ASYNC)
    later_job = await wait_for_job(app, later.json()["job_id"])
    gate.release()
    earlier_job = await wait_for_job(
        app, earlier.json()["job_id"], states=("succeeded", "failed", "superseded")
    )

    assert (earlier.status_code, later.status_code) == (202, 202)
    assert later_job["state"] == "succeeded"
    assert earlier_job["state"] == "superseded"
    document = await document_row(db)
    assert document is not None
    assert document["status"] == "completed"
    assert document["id"] == later.json()["document_id"]
    assert all("BETA" in text for text in await chunk_texts(db))
    assert await settled_violations(db) == {}


async def test_a_background_job_failing_after_a_newer_upload_leaves_the_newer_one(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    gate = upstream.gate("ALPHA", fail_status=500)
    queued = await upload(app, text_with("ALPHA"), session_id="s", route=ASYNC)
    await gate.until_arrived()
    newer = await upload(app, text_with("BETA"), session_id="s")
    gate.release()
    job = await wait_for_job(app, queued.json()["job_id"], states=("failed", "superseded"))

    assert newer.status_code == 200, newer.text
    assert job["state"] == "superseded"
    document = await document_row(db)
    assert document is not None
    assert document["status"] == "completed"
    assert all("BETA" in text for text in await chunk_texts(db))
    retry = await app.post(f"/api/collections/s/documents/{document['id']}/retry")
    assert retry.status_code == 409
    assert await settled_violations(db) == {}


async def test_concurrent_retries_of_a_failed_document_queue_one_job(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    upstream.gate("ALPHA", fail_status=500).release()
    failed = await upload(app, text_with("ALPHA"), session_id="s")
    assert failed.status_code == 502
    document_id = await scalar(db, "SELECT id::text FROM documents")
    upstream.reset()

    retries = await asyncio.gather(
        *(app.post(f"/api/collections/s/documents/{document_id}/retry") for _ in range(6))
    )

    assert sorted(r.status_code for r in retries) == [202] + [409] * 5
    (job,) = [r.json() for r in retries if r.status_code == 202]
    assert (await wait_for_job(app, job["id"]))["state"] == "succeeded"
    assert await scalar(db, "SELECT count(*) FROM ingestion_jobs") == 1
    assert await settled_violations(db) == {}


async def test_a_progress_stream_ends_with_cancelled_when_its_document_is_deleted(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    gate = upstream.gate("ALPHA")
    accepted = await upload(app, text_with("ALPHA"), session_id="s", route=ASYNC)
    job_id, document_id = accepted.json()["job_id"], accepted.json()["document_id"]
    await gate.until_arrived()

    async def follow() -> list[tuple[str, dict[str, Any]]]:
        async with app.stream("GET", f"/api/jobs/{job_id}/events") as stream:
            return parse_events("".join([part async for part in stream.aiter_text()]))

    streams = [asyncio.create_task(follow()) for _ in range(3)]
    await asyncio.sleep(0.3)
    await app.delete(f"/api/collections/s/documents/{document_id}")
    gate.release()
    followed = await asyncio.wait_for(asyncio.gather(*streams), timeout=30)

    for events in followed:
        assert events[-1][0] == "cancelled"
        assert events[-1][1]["error"] == "the document was deleted"
    assert await settled_violations(db) == {}


async def test_a_job_queued_with_no_task_to_run_it_is_queued_again(
    settings: Settings, db: AsyncConnection
) -> None:
    async with serve_app(settings) as client:  # no worker: the job waits
        accepted = await upload(client, long_text(2), session_id="s", route=ASYNC)
    # A crash between committing the job and handing it to the queue leaves this.
    await db.exec_driver_sql("DELETE FROM procrastinate_jobs")
    await db.commit()

    quick = {"worker_in_process": True, "worker_stalled_after_seconds": 1.0}
    async with serve_app(settings.model_copy(update=quick)) as client:
        job = await wait_for_job(client, accepted.json()["job_id"])

    assert job["state"] == "succeeded"
    assert await settled_violations(db) == {}


async def test_deletes_racing_commits_never_deadlock_nor_answer_500(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    """The release and the DELETE go out together, so the commit (collection, document,
    chunks) and the cascade (collection, documents, chunks) meet inside PostgreSQL."""
    statuses = []
    for round_ in range(6):
        collection = f"race{round_}"
        marker = f"ROUND{round_}X"
        gate = upstream.gate(marker)
        route = ASYNC if round_ % 2 else "/api/upload-document"
        uploading = asyncio.create_task(
            upload(app, text_with(marker), session_id=collection, route=route)
        )
        await gate.until_arrived()
        gate.release()
        deleted, uploaded = await asyncio.gather(
            app.delete(f"/api/collections/{collection}"), uploading
        )
        statuses += [deleted.status_code, uploaded.status_code]
        if uploaded.status_code == 202:
            await wait_for_job(
                app, uploaded.json()["job_id"], states=("succeeded", "cancelled", "failed")
            )

    assert set(statuses) <= {200, 201, 202, 204, 404, 409}, statuses
    assert await settled_violations(db, deleted_collections=[f"race{n}" for n in range(6)]) == {}


async def test_metadata_changed_while_a_new_version_is_embedded_ends_consistent(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    """A PATCH lands on the version that is current (the old one, while the re-upload is
    embedded); the re-upload then commits with its own metadata, in the chunks too."""
    first = await upload(app, text_with("FIRST"), session_id="s", metadata='{"v": 1}')
    route = f"/api/collections/s/documents/{first.json()['document_id']}"
    gate = upstream.gate("SECOND")
    reuploading = asyncio.create_task(
        upload(app, text_with("SECOND"), session_id="s", metadata='{"v": 2}')
    )
    await gate.until_arrived()

    patched = await app.patch(route, json={"metadata": {"v": "patched"}})
    gate.release()
    answer = await reuploading

    assert patched.status_code == 200 and patched.json()["metadata"] == {"v": "patched"}
    assert answer.status_code == 200
    assert (await app.get(route)).json()["metadata"] == {"v": 2}
    assert await settled_violations(db) == {}


async def test_metadata_of_a_document_being_processed_is_a_409(
    app: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    gate = upstream.gate("ALPHA")
    accepted = await upload(app, text_with("ALPHA"), route=ASYNC, session_id="s")
    await gate.until_arrived()
    route = f"/api/collections/s/documents/{accepted.json()['document_id']}"

    refused = await app.patch(route, json={"metadata": {"v": 1}})
    gate.release()
    job = await wait_for_job(app, accepted.json()["job_id"])
    changed = await app.patch(route, json={"metadata": {"v": 1}})

    assert refused.status_code == 409
    assert refused.json() == {
        "detail": f"document {accepted.json()['document_id']} is processing: change its "
        "metadata once it is completed or failed"
    }
    assert job["state"] == "succeeded"
    assert changed.status_code == 200
    assert await settled_violations(db) == {}
