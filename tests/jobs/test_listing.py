"""Background jobs can be found again: listed by collection and state, named by their
file, and shown on their document. A file that processing would refuse is refused before
the 202, and a failure that a retry cannot fix is not retried."""

import asyncio
import subprocess
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.db import scalar
from tests.support.files import write_encrypted_pdf, write_pdf
from tests.support.jobs import wait_for_job
from tests.support.servers import serve_app
from tests.support.settings import RAGSTORE
from tests.support.uploads import long_text, upload

ASYNC = "/api/upload-document?wait=false"


def worker(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"worker_in_process": True, **overrides})


async def test_jobs_are_listed_newest_first_by_collection_and_state(settings: Settings) -> None:
    async with serve_app(worker(settings)) as client:
        first = (await upload(client, long_text(2), "a.txt", ASYNC, session_id="north")).json()
        second = (await upload(client, long_text(3), "b.txt", ASYNC, session_id="south")).json()
        for job in (first, second):
            await wait_for_job(client, job["job_id"])
        await client.delete(f"/api/collections/north/documents/{first['document_id']}")

        everything = (await client.get("/api/jobs")).json()
        north = (await client.get("/api/jobs", params={"collection_id": "north"})).json()
        succeeded = (await client.get("/api/jobs", params={"state": "succeeded"})).json()
        bad_state = await client.get("/api/jobs", params={"state": "lost"})

    assert [job["id"] for job in everything["data"]] == [second["job_id"], first["job_id"]]
    assert everything["total"] == 2
    # The document is gone; its finished job stays, still named.
    assert [(j["filename"], j["collection_id"], j["document_id"]) for j in north["data"]] == [
        ("a.txt", "north", None)
    ]
    assert {job["state"] for job in succeeded["data"]} == {"succeeded"}
    assert bad_state.status_code == 422


async def test_a_document_shows_its_latest_job(settings: Settings) -> None:
    async with serve_app(worker(settings)) as client:
        accepted = (await upload(client, long_text(2), "a.txt", ASYNC, session_id="s")).json()
        await wait_for_job(client, accepted["job_id"])
        document = await client.get(f"/api/collections/s/documents/{accepted['document_id']}")
        listed = (await client.get("/api/collections/s/documents")).json()["data"]
        plain = (await upload(client, long_text(4), "c.txt", session_id="s")).json()

    latest = document.json()["latest_job"]
    assert latest["id"] == accepted["job_id"] and latest["state"] == "succeeded"
    assert listed[0]["latest_job"] == latest
    by_name = {d["filename"]: d for d in (await _documents(settings, "s"))}
    assert by_name["c.txt"]["latest_job"] is None and plain["status"] == "completed"


async def _documents(settings: Settings, collection: str) -> list[dict[str, object]]:
    async with serve_app(settings) as client:
        data: list[dict[str, object]] = (
            await client.get(f"/api/collections/{collection}/documents")
        ).json()["data"]
        return data


async def test_a_background_upload_that_processing_would_refuse_is_a_422_at_once(
    client: httpx.AsyncClient, tmp_path: Path, db: AsyncConnection
) -> None:
    encrypted = write_encrypted_pdf(tmp_path / "e.pdf", "secret text", user_password="pw")
    blank = write_pdf(tmp_path / "blank.pdf", ["", ""])
    cases = {
        "encrypted": (encrypted.read_bytes(), "e.pdf"),
        "no text": (blank.read_bytes(), "blank.pdf"),
        "empty": (b"  \n", "empty.txt"),
        "damaged": (b"%PDF-1.7\n" + bytes(200), "broken.pdf"),
    }

    answers = {
        name: await upload(client, content, filename, ASYNC, session_id="s")
        for name, (content, filename) in cases.items()
    }

    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        cases, 422
    )
    assert "encrypted" in answers["encrypted"].json()["detail"]
    assert answers["no text"].json()["detail"] == (
        "no extractable text in blank.pdf (a scanned PDF? OCR is not supported)"
    )
    assert await scalar(db, "SELECT count(*) FROM documents") == 0
    assert await scalar(db, "SELECT count(*) FROM ingestion_jobs") == 0


async def test_a_failure_a_retry_cannot_fix_is_not_retried(
    settings: Settings, cli_env: dict[str, str], db: AsyncConnection
) -> None:
    """Over the chunk cap, found only once the job chunks the file: the file itself is the
    problem, so a retry answers 409 and `retry-failed` leaves it, saying why."""
    capped = worker(settings, max_chunks_per_document=2)
    async with serve_app(capped) as client:
        accepted = (await upload(client, long_text(12), "big.txt", ASYNC, session_id="s")).json()
        job = await wait_for_job(client, accepted["job_id"])
        route = f"/api/collections/s/documents/{accepted['document_id']}"
        document = (await client.get(route)).json()
        retry = await client.post(f"{route}/retry")

    cli = await asyncio.to_thread(
        subprocess.run,
        [RAGSTORE, "documents", "retry-failed", "--collection", "s"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert job["state"] == "failed" and "more than 2 chunks" in job["error"]
    assert document["status"] == "failed" and document["retryable"] is False
    assert retry.status_code == 409
    assert "a retry would fail the same way: upload a fixed file" in retry.json()["detail"]
    assert cli.returncode == 0, cli.stderr
    assert "queued 0 failed documents of s" in cli.stdout
    assert f"not retried: big.txt ({accepted['document_id']})" in cli.stdout
    assert await scalar(db, "SELECT count(*) FROM ingestion_jobs") == 1
