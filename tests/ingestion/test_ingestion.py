"""Ingestion end to end: exactly once, all at once, nothing dropped."""

import asyncio
import math
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.db import scalar, wait_until
from tests.support.fake_openai import FakeOpenAI, embed_text
from tests.support.files import write_encrypted_pdf, write_pdf
from tests.support.jobs import wait_for_job
from tests.support.servers import serve_app
from tests.support.uploads import long_text, upload


def embedding_calls(upstream: FakeOpenAI) -> int:
    return sum(1 for request in upstream.requests if request.path == "embeddings")


async def test_the_same_file_again_is_not_a_second_document_nor_embedded_again(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    first = await upload(client, long_text(), "a.txt", session_id="s")
    calls_after_first = embedding_calls(upstream)

    second = await upload(client, long_text(), "a.txt", session_id="s")

    assert second.status_code == 200
    assert "already processed" in second.json()["message"]
    assert second.json()["document_id"] == first.json()["document_id"]
    assert embedding_calls(upstream) == calls_after_first == 1
    assert await scalar(db, "SELECT count(*) FROM documents") == 1
    assert await scalar(db, "SELECT count(*) FROM chunks") == first.json()["chunk_count"]


async def test_the_same_content_elsewhere_comes_from_the_cache_without_embedding(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    first = await upload(client, long_text(), "a.txt", session_id="s1")
    upstream.requests.clear()

    copy = await upload(client, long_text(), "renamed.txt", session_id="s2")

    assert copy.status_code == 200
    assert copy.json()["chunk_count"] == first.json()["chunk_count"]
    assert embedding_calls(upstream) == 0
    same_vectors = await scalar(
        db,
        """SELECT bool_and(a.embedding = b.embedding AND a.text = b.text)
           FROM chunks a JOIN chunks b USING (chunk_index)
           WHERE a.collection_id = 's1' AND b.collection_id = 's2'""",
    )
    assert same_vectors is True
    filename = await scalar(
        db, "SELECT DISTINCT metadata->>'filename' FROM chunks WHERE collection_id = 's2'"
    )
    assert filename == "renamed.txt"


async def test_a_changed_file_under_the_same_name_replaces_the_old_chunks(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await upload(client, "The old version talks about apples.", "a.txt", session_id="s")

    response = await upload(client, "The new version talks about pears.", "a.txt", session_id="s")

    assert response.json()["document_count"] == 1
    texts = await scalar(db, "SELECT array_agg(text) FROM chunks")
    assert texts == ["The new version talks about pears."]


async def test_other_chunking_parameters_process_the_file_again(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    await upload(client, long_text(), "a.txt", session_id="s")
    upstream.requests.clear()

    response = await upload(
        client, long_text(), "a.txt", session_id="s", chunk_size=200, chunk_overlap=20
    )

    assert embedding_calls(upstream) == 1
    longest = await scalar(db, "SELECT max(length(text)) FROM chunks")
    assert longest <= 200
    assert response.json()["chunk_count"] == await scalar(db, "SELECT count(*) FROM chunks")


async def test_chunks_carry_metadata_and_the_vector_of_their_own_text(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    response = await upload(
        client, long_text(), "a.txt", session_id="s", metadata='{"team": "search"}'
    )
    document_id = response.json()["document_id"]

    chunks = await client.get(f"/api/collections/s/documents/{document_id}/chunks?limit=2")

    body = chunks.json()
    assert body["total"] == response.json()["chunk_count"]
    first = body["data"][0]
    assert first["chunk_index"] == 0
    assert first["metadata"]["filename"] == "a.txt"
    assert first["metadata"]["chunk_index"] == 0
    assert first["metadata"]["team"] == "search"
    assert "upload_time" in first["metadata"]
    row = (
        await db.exec_driver_sql("SELECT text, embedding::text FROM chunks WHERE chunk_index = 1")
    ).one()
    stored = np.array([float(v) for v in row[1].strip("[]").split(",")])
    assert np.allclose(stored, embed_text(row[0], 384), atol=1e-6)


async def test_embeddings_go_in_batches_bounded_by_the_batch_size(
    settings: Settings, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    small_batches = settings.model_copy(update={"embedding_batch_size": 5})
    async with serve_app(small_batches) as client:
        response = await upload(client, long_text(20), "a.txt", chunk_size=200, chunk_overlap=0)

    count = response.json()["chunk_count"]
    batches = [len(r.body["input"]) for r in upstream.requests if r.path == "embeddings"]
    assert len(batches) == math.ceil(count / 5)
    assert max(batches) == 5 and sum(batches) == count
    order_kept = await scalar(
        db,
        "SELECT bool_and(metadata->>'chunk_index' = chunk_index::text) FROM chunks",
    )
    assert order_kept is True


async def test_a_batch_that_fails_twice_then_succeeds_loses_nothing(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    upstream.fail_next(503, times=1)
    upstream.fail_next(429, times=1, retry_after="0")

    response = await upload(client, long_text(), "a.txt")

    assert response.status_code == 200, response.text
    assert embedding_calls(upstream) == 3
    assert await scalar(db, "SELECT count(*) FROM chunks") == response.json()["chunk_count"]


async def test_an_upstream_that_never_recovers_marks_the_document_failed_with_no_chunks(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    upstream.fail_next(503, times=50)

    response = await upload(client, long_text(), "a.txt", session_id="s")

    assert response.status_code == 502
    assert "embedding failed after 3 attempts" in response.json()["detail"]
    assert "marked failed" in response.json()["detail"]
    assert embedding_calls(upstream) == 3
    status, error = (
        await db.exec_driver_sql("SELECT status, error FROM documents WHERE filename = 'a.txt'")
    ).one()
    assert status == "failed"
    assert "the model provider failed (503)" in error
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0
    assert await scalar(db, "SELECT count(*) FROM processed_chunks") == 0


async def test_a_failed_document_is_processed_when_uploaded_again(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    upstream.fail_next(503, times=3)
    await upload(client, long_text(), "a.txt", session_id="s")

    retried = await upload(client, long_text(), "a.txt", session_id="s")

    assert retried.status_code == 200
    assert retried.json()["status"] == "completed"
    assert await scalar(db, "SELECT status FROM documents") == "completed"


@pytest.mark.parametrize(
    ("route", "form"),
    [
        ("/api/upload-document", {"session_id": "s"}),
        ("/api/collections/s/documents", {}),
        ("/api/upload-document?wait=false", {"session_id": "s"}),
        ("/api/collections/s/documents?wait=false", {}),
    ],
    ids=["original", "resource", "original-async", "resource-async"],
)
async def test_ten_concurrent_uploads_of_the_same_file_make_one_document(
    settings: Settings,
    upstream: FakeOpenAI,
    db: AsyncConnection,
    route: str,
    form: dict[str, str],
) -> None:
    upstream.response_delay = 0.3
    with_worker = settings.model_copy(update={"worker_in_process": True})
    async with serve_app(with_worker, client_timeout=60) as client:
        await client.post("/api/collections", json={"name": "s", "id": "s"})
        responses = await asyncio.gather(
            *(upload(client, long_text(), "same.txt", route=route, **form) for _ in range(10))
        )
        jobs = [r.json()["job_id"] for r in responses if r.json()["job_id"]]
        finished = [await wait_for_job(client, job_id) for job_id in jobs]

    assert {r.status_code for r in responses} <= {200, 201, 202}, [r.text for r in responses]
    assert len({r.json().get("document_id") or r.json()["id"] for r in responses}) == 1
    assert [job["state"] for job in finished] == ["succeeded"] * len(jobs)
    assert await scalar(db, "SELECT count(*) FROM documents") == 1
    status, chunk_count = (
        await db.exec_driver_sql("SELECT status, chunk_count FROM documents")
    ).one()
    assert status == "completed"
    assert chunk_count == 12
    assert await scalar(db, "SELECT count(*) FROM chunks") == chunk_count
    assert await scalar(db, "SELECT count(DISTINCT chunk_index) FROM chunks") == chunk_count
    assert embedding_calls(upstream) == 1


async def test_a_request_key_is_used_for_its_embeddings(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await upload(client, long_text(2), api_key="uploader-key-123")

    assert {r.authorization for r in upstream.requests} == {"Bearer uploader-key-123"}


@pytest.mark.parametrize(
    ("content", "filename", "form", "status", "detail"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "picture.pdf", {}, 415, "unsupported file type"),
        (b"", "empty.txt", {}, 422, "the file is empty"),
        (b"hello world", "a.txt", {"chunk_size": 50, "chunk_overlap": 50}, 422, "chunk_overlap"),
        (b"hello world", "a.txt", {"chunk_size": 0}, 422, "chunk_size"),
        (b"hello world", "a.txt", {"metadata": "{not json"}, 422, "metadata is not valid JSON"),
        (b"hello world", "a.txt", {"metadata": "[1, 2]"}, 422, "metadata must be a JSON object"),
        (b"hello world", "a.txt", {"metadata": '{"a": "x\\u0000"}'}, 422, "NUL characters"),
        (b"hello world", "a.txt", {"metadata": '{"a": NaN}'}, 422, "NaN or Infinity"),
        (b"hello world", "a.txt", {"metadata": '{"a": "\\udab3"}'}, 422, "unpaired surrogates"),
    ],
)
async def test_bad_input_is_a_clear_4xx_and_nothing_is_stored(
    client: httpx.AsyncClient,
    db: AsyncConnection,
    upstream: FakeOpenAI,
    content: bytes,
    filename: str,
    form: dict[str, object],
    status: int,
    detail: str,
) -> None:
    response = await upload(client, content, filename, session_id="s", **form)

    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]
    assert await scalar(db, "SELECT count(*) FROM collections") == 0
    assert await scalar(db, "SELECT count(*) FROM documents") == 0
    assert embedding_calls(upstream) == 0
    assert (await client.get("/api/health")).status_code == 200


async def test_a_file_over_the_limit_is_413_and_nothing_is_stored(
    settings: Settings, db: AsyncConnection
) -> None:
    tiny_limit = settings.model_copy(update={"max_upload_mb": 0.01})
    async with serve_app(tiny_limit) as client:
        just_over = await upload(client, "x" * 11_000, "a.txt")
        far_over = await upload(client, "x" * 3_000_000, "b.txt")

    assert just_over.status_code == 413
    assert just_over.json() == {"detail": "the file is larger than the 0.01 MB upload limit"}
    assert far_over.status_code == 413
    assert await scalar(db, "SELECT count(*) FROM documents") == 0


async def test_encrypted_and_damaged_pdfs_are_422(
    client: httpx.AsyncClient, db: AsyncConnection, tmp_path: Path
) -> None:
    encrypted = write_encrypted_pdf(tmp_path / "locked.pdf", "secret", user_password="pw")
    intact = write_pdf(tmp_path / "ok.pdf", ["Some text on a page."]).read_bytes()

    locked = await upload(client, encrypted.read_bytes(), "locked.pdf")
    damaged = await upload(client, intact[: len(intact) // 2], "damaged.pdf")

    assert locked.status_code == 422
    assert locked.json()["detail"].startswith("the PDF is encrypted")
    assert damaged.status_code == 422
    assert "damaged" in damaged.json()["detail"]
    assert await scalar(db, "SELECT count(*) FROM documents") == 0


async def test_file_names_lose_their_directories(client: httpx.AsyncClient) -> None:
    response = await upload(client, long_text(2), "../../etc/passwd.txt")

    assert response.json()["filename"] == "passwd.txt"


async def test_chunk_rows_and_their_vectors_stay_out_of_toast(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    # A 384-d chunk row with its text and tsvector is over PostgreSQL's default 2 KB
    # TOAST threshold; migration 0003 keeps such rows inline (benchmark 3's scans).
    response = await upload(client, long_text(40), session_id="s")

    assert response.status_code == 200, response.text
    # `chunks` is partitioned: the rows are in the collection's partition.
    partition = await scalar(db, "SELECT chunk_partition_name('s')")
    for table in (partition, "processed_chunks"):
        rows = await scalar(db, f"SELECT count(*) FROM {table}")
        widest = await scalar(db, f"SELECT max(pg_column_size(t.*)) FROM {table} t")
        toast_bytes = await scalar(
            db,
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class "
            "WHERE oid = CAST(:table AS regclass)",
            table=table,
        )
        assert rows > 20
        assert widest > 2048, "rows too small to have been toasted anyway"
        assert toast_bytes == 0, table


PIPELINED = {"embedding_batch_size": 4, "embedding_concurrency": 4}


async def test_each_embedded_part_is_stored_while_another_is_still_out(
    settings: Settings, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    """A slow call holds up its own chunks only: the slices after it are embedded and in
    the cache meanwhile (slices of 4 chunks, a call each, four at once, the first held):
    no slice waits for the slowest call of the ones before."""
    gate = upstream.gate("HELDPART")
    async with serve_app(settings.model_copy(update=PIPELINED)) as client:
        uploading = asyncio.create_task(upload(client, "HELDPART " + long_text(40)))
        await gate.until_arrived()
        await wait_until(
            db,
            "SELECT count(*) >= 28 FROM processed_chunks",
            "the seven slices after the held one stored",
        )
        held_out = await scalar(db, "SELECT count(*) FROM processed_chunks WHERE chunk_index < 4")
        assert not uploading.done()
        gate.release()
        answer = await uploading

    assert answer.status_code == 200, answer.text
    assert held_out == 0
    chunks = answer.json()["chunk_count"]
    assert chunks >= 32, "more than eight slices of 4 chunks"
    assert await scalar(db, "SELECT count(*) FROM processed_chunks") == chunks
    assert await scalar(db, "SELECT count(DISTINCT chunk_index) FROM chunks") == chunks


async def test_a_large_document_keeps_every_allowed_call_busy(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    """Slices of one call each (4 chunks, a batch of 4): four slices are embedded at once,
    so four calls are out, as many as allowed, and no more. Every call is held here."""
    gate = upstream.gate("HELD")
    words = long_text(40).split()
    marked = " ".join(f"HELD {word}" if i % 8 == 0 else word for i, word in enumerate(words))
    async with serve_app(settings.model_copy(update=PIPELINED)) as client:
        uploading = asyncio.create_task(upload(client, marked))
        await gate.until_arrived()
        for _ in range(200):
            if upstream.in_flight >= 4:
                break
            await asyncio.sleep(0.05)
        out = upstream.in_flight
        await asyncio.sleep(0.3)
        out_later = upstream.in_flight
        gate.release()
        answer = await uploading

    assert answer.status_code == 200, answer.text
    assert (out, out_later) == (4, 4)


async def test_a_part_that_keeps_failing_fails_the_document_and_drops_the_stored_parts(
    settings: Settings, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    gate = upstream.gate("HELDPART", fail_status=500)
    async with serve_app(settings.model_copy(update=PIPELINED)) as client:
        uploading = asyncio.create_task(upload(client, "HELDPART " + long_text(40)))
        await gate.until_arrived()
        await wait_until(db, "SELECT count(*) >= 12 FROM processed_chunks", "the other parts")
        gate.release()
        answer = await uploading

    assert answer.status_code == 502
    assert "embedding failed after 3 attempts" in answer.json()["detail"]
    assert await scalar(db, "SELECT count(*) FROM processed_chunks") == 0
    assert await scalar(db, "SELECT count(*) FROM processed_documents") == 0
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0
