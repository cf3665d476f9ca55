"""`kill -9` in the middle of ingesting a large document, with real processes.

`ragstore serve` runs on the embedded PostgreSQL in a data directory of its
own, embedding through the fake upstream slowed down so that a document of
thousands of chunks is still being written when the server is killed. Then it
is started again, and what PostgreSQL holds must be consistent: no document
`completed` with chunks missing, no chunks of a document that is not
completed, and the interrupted document either finished or absent, never half
there.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.db.embedded import EmbeddedPostgres
from tests.support.db import wait_until
from tests.support.fake_openai import FakeOpenAI
from tests.support.invariants import settled_violations
from tests.support.jobs import wait_for_job
from tests.support.net import free_port
from tests.support.settings import APP_SETTINGS, RAGSTORE, SERVER_KEY
from tests.support.uploads import PROSE, clean_chunking, long_text, upload

# Small batches and a slow upstream: the large document takes many seconds.
BATCH_SIZE = 100
UPSTREAM_DELAY = 0.5
# Enough embedding calls made that part of the document sits in the open transaction.
CALLS_BEFORE_KILL = 4


def large_text(chunks: int = 3000) -> str:
    """Distinct paragraphs that split into about `chunks` chunks of 500 characters."""
    return "".join(f"Paragraph {n}. {PROSE[:400]}\n\n" for n in range(chunks))


def waiting_for_a_lock(statement: str) -> str:
    """Whether a session running `statement` waits for a lock."""
    return f"""SELECT count(*) > 0 FROM pg_stat_activity
               WHERE wait_event_type = 'Lock' AND query LIKE '%{statement}%'"""


def ended(statement: str) -> str:
    """Whether no session runs `statement` any more (but this one, whose text holds it)."""
    return f"""SELECT count(*) = 0 FROM pg_stat_activity
               WHERE pid <> pg_backend_pid() AND query LIKE '%{statement}%'"""


async def upload_held_up(
    client: httpx.AsyncClient, holder: AsyncConnection, lock: str, content: str
) -> "asyncio.Task[httpx.Response]":
    """A new collection `fresh`, the test's `lock` taken on `holder`, and the upload of
    `content` into the collection started (it will wait for that lock)."""
    made = await client.post("/api/collections", json={"id": "fresh", "name": "f"})
    assert made.status_code == 201, made.text
    await holder.execute(text(lock))
    return asyncio.create_task(upload(client, content, "large.txt", session_id="fresh"))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under tmp_path: a concurrent pytest session may prune it while it is in use.
    directory = Path(tempfile.mkdtemp(prefix="ragstore-crash-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def server_env(data_dir: Path, upstream: FakeOpenAI) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update({f"RAGSTORE_{k.upper()}": str(v) for k, v in APP_SETTINGS.items()})
    environment.update(
        {
            "RAGSTORE_DATA_DIR": str(data_dir),
            "OPENAI_BASE_URL": upstream.url,
            "OPENAI_API_KEY": SERVER_KEY,
            "RAGSTORE_WORKER_IN_PROCESS": "true",
            # A killed worker's job is handed to the next one quickly.
            "RAGSTORE_WORKER_STALLED_AFTER_SECONDS": "2",
            "RAGSTORE_EMBEDDING_BATCH_SIZE": str(BATCH_SIZE),
            "RAGSTORE_EMBEDDING_CONCURRENCY": "2",
        }
    )
    return environment


StartServer = Callable[[], "Served"]


class Served:
    """One `ragstore serve` process and a client for it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("a") as output:
            self.process = subprocess.Popen(
                [RAGSTORE, "serve", "--port", str(self.port)],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    async def wait_until_healthy(self) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(600):
                assert self.process.poll() is None, self.log.read_text()[-3000:]
                try:
                    response = await client.get(f"{self.url}/api/health")
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
                    continue
                assert response.status_code == 200, response.text
                return
        raise TimeoutError(f"ragstore serve never became healthy: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
async def start_server(server_env: dict[str, str], data_dir: Path) -> AsyncIterator[StartServer]:
    started: list[Served] = []

    def start() -> Served:
        served = Served(server_env, data_dir / "serve.log")
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
    # A failed test may leave the embedded server behind; never leak it.
    postmaster = postmaster_pid(data_dir)
    if postmaster is not None and psutil.pid_exists(postmaster):
        kill_tree(postmaster)


def postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its children at once, as a power cut would."""
    parent = psutil.Process(pid)
    for process in [parent, *parent.children(recursive=True)]:
        # A backend may exit on its own once its postmaster is gone.
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs([parent], timeout=10)


async def embedding_calls_reach(upstream: FakeOpenAI, count: int) -> None:
    for _ in range(1200):
        if sum(1 for r in upstream.requests if r.path == "embeddings") >= count:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"fewer than {count} embedding calls arrived")


async def database_state(data_dir: Path) -> dict[str, Any]:
    """What PostgreSQL holds, read by joining the embedded server as one more user."""
    embedded = EmbeddedPostgres(data_dir)
    url = await asyncio.to_thread(embedded.start)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:

            async def value(sql: str) -> Any:
                return await connection.scalar(text(sql))

            documents = (
                await connection.execute(
                    text("SELECT filename, status, error, chunk_count FROM documents")
                )
            ).all()
            return {
                "documents": {row.filename: row for row in documents},
                "completed_with_missing_chunks": await value(
                    """SELECT count(*) FROM documents d WHERE d.status = 'completed'
                       AND d.chunk_count <> (SELECT count(*) FROM chunks c
                                             WHERE c.document_id = d.id)"""
                ),
                "chunks_of_unfinished_documents": await value(
                    """SELECT count(*) FROM chunks c LEFT JOIN documents d
                       ON d.id = c.document_id WHERE d.id IS NULL OR d.status <> 'completed'"""
                ),
                "chunks": await value("SELECT count(*) FROM chunks"),
            }
    finally:
        await engine.dispose()
        await asyncio.to_thread(embedded.stop)


def assert_consistent(state: dict[str, Any]) -> None:
    assert state["completed_with_missing_chunks"] == 0
    assert state["chunks_of_unfinished_documents"] == 0
    assert not [d for d in state["documents"].values() if d.status == "processing"]


async def test_a_server_killed_during_a_sync_upload_leaves_no_partial_document(
    start_server: StartServer, upstream: FakeOpenAI, data_dir: Path
) -> None:
    first = start_server()
    await first.wait_until_healthy()
    content = large_text()
    async with httpx.AsyncClient(base_url=first.url, timeout=120) as client:
        kept = await upload(client, long_text(), "kept.txt", session_id="c")
        assert kept.status_code == 200, kept.text
        upstream.response_delay = UPSTREAM_DELAY
        interrupted = asyncio.create_task(upload(client, content, "large.txt", session_id="c"))
        await embedding_calls_reach(upstream, CALLS_BEFORE_KILL)
        postgres = postmaster_pid(data_dir)

        first.kill()

        with pytest.raises(httpx.TransportError):
            await interrupted
    # Only ragstore died: its embedded PostgreSQL runs on, with a dead process registered.
    assert postgres is not None and psutil.pid_exists(postgres)
    upstream.response_delay = 0.0

    second = start_server()
    await second.wait_until_healthy()
    state = await database_state(data_dir)
    async with httpx.AsyncClient(base_url=second.url, timeout=120) as client:
        again = await upload(client, content, "large.txt", session_id="c")
    after_retry = await database_state(data_dir)

    assert postmaster_pid(data_dir) == postgres, "the running server was joined, not replaced"
    assert_consistent(state)
    # The upload's single transaction died with its connection: nothing of it is stored.
    assert set(state["documents"]) == {"kept.txt"}
    assert state["documents"]["kept.txt"].status == "completed"
    assert state["chunks"] == kept.json()["chunk_count"]
    assert again.status_code == 200, again.text
    assert again.json()["chunk_count"] == len(clean_chunking(content, data_dir)) > 2000
    assert_consistent(after_retry)
    assert after_retry["documents"]["large.txt"].status == "completed"


async def test_a_machine_crash_during_an_async_job_is_recovered_and_the_job_finished(
    start_server: StartServer, upstream: FakeOpenAI, data_dir: Path
) -> None:
    first = start_server()
    await first.wait_until_healthy()
    content = large_text()
    upstream.response_delay = UPSTREAM_DELAY
    async with httpx.AsyncClient(base_url=first.url, timeout=120) as client:
        queued = await upload(
            client, content, "large.txt", session_id="c", route="/api/upload-document?wait=false"
        )
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job_id"]
        await embedding_calls_reach(upstream, CALLS_BEFORE_KILL)
    postgres = postmaster_pid(data_dir)
    assert postgres is not None

    # Power cut: ragstore, PostgreSQL and its backends all die at once.
    first.kill()
    kill_tree(postgres)
    assert (data_dir / "pgdata" / "postmaster.pid").exists(), "the crash left a stale pid file"
    upstream.response_delay = 0.0

    second = start_server()
    await second.wait_until_healthy()
    async with httpx.AsyncClient(base_url=second.url, timeout=120) as client:
        job = await wait_for_job(client, job_id)
    state = await database_state(data_dir)

    assert postmaster_pid(data_dir) != postgres, "PostgreSQL was started again after the crash"
    log = (data_dir / "serve.log").read_text()
    assert "removing lock files of a server that is gone" in log
    assert "lost its worker; queued again" in log
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 2, "the stalled job was taken up again, by the new server's worker"
    assert_consistent(state)
    document = state["documents"]["large.txt"]
    assert document.status == "completed"
    assert document.chunk_count == len(clean_chunking(content, data_dir)) == state["chunks"]


async def test_a_server_killed_while_a_collections_first_chunks_are_indexed_leaves_nothing(
    start_server: StartServer, data_dir: Path
) -> None:
    """A collection's first upload writes its chunks without an HNSW graph or BM25
    postings, which are built over them (app/document/partitions.py). The test holds up
    that transaction once its chunks are written (its removal of the upload's stored bytes
    waits for a lock on their table, which the test holds), kills the server, and lets the
    orphaned transaction go on: it must roll back whole, and the upload made again must
    index the collection."""
    first = start_server()
    await first.wait_until_healthy()
    content = large_text(600)
    embedded = EmbeddedPostgres(data_dir)
    engine = create_async_engine(await asyncio.to_thread(embedded.start))
    # The upload's DELETE waiting for the table the test holds; then gone.
    statement = "DELETE FROM document_files"
    try:
        async with engine.connect() as holder, engine.connect() as observer:
            async with httpx.AsyncClient(base_url=first.url, timeout=120) as client:
                interrupted = await upload_held_up(
                    client, holder, "LOCK TABLE document_files IN EXCLUSIVE MODE", content
                )
                await wait_until(observer, waiting_for_a_lock(statement), "the chunks written")
                partition = await observer.scalar(text("SELECT chunk_partition_name('fresh')"))
                indexes_meanwhile = await observer.scalar(
                    text("SELECT count(*) FROM pg_indexes WHERE tablename = :p"), {"p": partition}
                )

                first.kill()

                with pytest.raises(httpx.TransportError):
                    await interrupted
            await holder.rollback()  # the orphaned transaction goes on, and finds its client gone
            await observer.rollback()
            await wait_until(observer, ended(statement), "the orphaned transaction ended")
            broken = await settled_violations(observer)
            stored = await observer.scalar(text("SELECT count(*) FROM chunks"))
            documents = await observer.scalar(
                text("SELECT count(*) FROM documents WHERE status = 'completed'")
            )
            await observer.rollback()

        second = start_server()
        await second.wait_until_healthy()
        async with httpx.AsyncClient(base_url=second.url, timeout=120) as client:
            again = await upload(client, content, "large.txt", session_id="fresh")
        async with engine.connect() as observer:
            broken_after = await settled_violations(observer)
            vector_indexes = await observer.scalar(
                text(
                    "SELECT count(*) FROM pg_indexes WHERE tablename = :p "
                    "AND indexdef LIKE '%USING hnsw%'"
                ),
                {"p": partition},
            )
    finally:
        await engine.dispose()
        await asyncio.to_thread(embedded.stop)

    # Only the partition's own indexes (primary key, unique, two GIN, the pending chunks'
    # B-tree): no HNSW while writing.
    assert indexes_meanwhile == 5
    assert (stored, documents) == (0, 0)
    assert broken == {}
    assert again.status_code == 200, again.text
    assert again.json()["chunk_count"] == len(clean_chunking(content, data_dir)) > 500
    assert broken_after == {}
    assert vector_indexes == 1


async def test_a_server_killed_while_a_bulk_load_is_staged_leaves_nothing(
    start_server: StartServer, server_env: dict[str, str], data_dir: Path
) -> None:
    """A bulk load (app/ingestion/bulk_load.py) stages a new collection's chunks in tables of
    their own before its commit. The test holds up the staging (its keyword part waits for
    a lock on keyword_postings that the test holds), kills the server, and lets the
    orphaned work go on: nothing is published, and the next server's sweep drops the staged
    tables, whose stager is gone. The upload made again is staged and published."""
    server_env["RAGSTORE_BULK_LOAD_MIN_CHUNKS"] = "100"
    first = start_server()
    await first.wait_until_healthy()
    content = large_text(300)
    embedded = EmbeddedPostgres(data_dir)
    engine = create_async_engine(await asyncio.to_thread(embedded.start))
    statement = "keyword_index_stage"
    staged_tables = "SELECT count(*) FROM pg_tables WHERE tablename ~ '^staged_[0-9a-f]{32}_'"
    try:
        async with engine.connect() as holder, engine.connect() as observer:
            async with httpx.AsyncClient(base_url=first.url, timeout=120) as client:
                interrupted = await upload_held_up(
                    client, holder, "LOCK TABLE keyword_postings IN ACCESS EXCLUSIVE MODE", content
                )
                await wait_until(observer, waiting_for_a_lock(statement), "the staging held up")

                first.kill()

                with pytest.raises(httpx.TransportError):
                    await interrupted
            await holder.rollback()
            await observer.rollback()
            await wait_until(observer, ended(statement), "the orphaned staging ended")
            left_staged = await observer.scalar(text(staged_tables))
            published = await observer.scalar(
                text("SELECT count(*) FROM documents WHERE status = 'completed'")
            )
            await observer.rollback()

            second = start_server()
            await second.wait_until_healthy()
            await wait_until(
                observer, f"SELECT ({staged_tables}) = 0", "the sweep dropping the staged tables"
            )
            async with httpx.AsyncClient(base_url=second.url, timeout=120) as client:
                again = await upload(client, content, "large.txt", session_id="fresh")
            broken_after = await settled_violations(observer)
    finally:
        await engine.dispose()
        await asyncio.to_thread(embedded.stop)

    assert left_staged == 1  # the chunks' table, committed before the keyword staging began
    assert published == 0
    assert again.status_code == 200, again.text
    assert again.json()["chunk_count"] == len(clean_chunking(content, data_dir)) >= 100
    assert "staged" in (data_dir / "serve.log").read_text()
    assert broken_after == {}
