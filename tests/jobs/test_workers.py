"""Standalone workers sharing one queue: every job done exactly once, even when one is killed."""

import asyncio
import signal
import subprocess
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI
from tests.support.jobs import wait_for_job
from tests.support.settings import RAGSTORE
from tests.support.uploads import long_text, upload

StartWorker = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def start_worker(cli_env: dict[str, str]) -> Iterator[StartWorker]:
    started: list[subprocess.Popen[str]] = []

    def start(**overrides: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [RAGSTORE, "worker"],
            env={**cli_env, **overrides},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def queue_uploads(client: httpx.AsyncClient, count: int) -> list[str]:
    jobs = []
    for n in range(count):
        response = await upload(
            client,
            f"Document {n}. " + long_text(2),
            f"doc{n}.txt",
            session_id="s",
            route="/api/upload-document?wait=false",
        )
        assert response.status_code == 202, response.text
        jobs.append(response.json()["job_id"])
    return jobs


async def test_two_workers_finish_every_job_exactly_once(
    client: httpx.AsyncClient, start_worker: StartWorker, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    upstream.response_delay = 0.2
    start_worker()
    start_worker()

    job_ids = await queue_uploads(client, 6)
    finished = [await wait_for_job(client, job_id) for job_id in job_ids]

    assert [job["state"] for job in finished] == ["succeeded"] * 6
    assert [job["attempts"] for job in finished] == [1] * 6
    assert await scalar(db, "SELECT count(*) FROM documents WHERE status = 'completed'") == 6
    exact = await scalar(
        db,
        """SELECT bool_and(d.chunk_count = (
               SELECT count(*) FROM chunks c WHERE c.document_id = d.id))
           FROM documents d""",
    )
    assert exact is True
    embedded_requests = sum(1 for r in upstream.requests if r.path == "embeddings")
    assert embedded_requests == 6, "no document was embedded twice"


async def test_a_job_whose_worker_is_killed_is_finished_by_another(
    client: httpx.AsyncClient, start_worker: StartWorker, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    upstream.response_delay = 4.0  # the first attempt is still embedding when it is killed
    quick_stall = {"RAGSTORE_WORKER_STALLED_AFTER_SECONDS": "2"}
    doomed = start_worker(**quick_stall)
    (job_id,) = await queue_uploads(client, 1)
    await wait_for_job(client, job_id, states=("running",))
    await asyncio.sleep(0.5)

    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    upstream.response_delay = 0.0
    start_worker(**quick_stall)
    finished = await wait_for_job(client, job_id)

    assert finished["state"] == "succeeded"
    assert finished["attempts"] == 2
    chunk_count = await scalar(db, "SELECT chunk_count FROM documents")
    assert chunk_count > 0
    assert await scalar(db, "SELECT count(*) FROM chunks") == chunk_count
    assert await scalar(db, "SELECT count(*) FROM documents") == 1
