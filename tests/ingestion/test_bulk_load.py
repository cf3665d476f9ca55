"""A new collection's first large upload is staged outside `chunks`, every index built over
it at once, and published in its commit (app/ingestion/bulk_load.py, migration 0018)."""

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.document.staging import drop_abandoned_stagings
from app.ingestion.bulk_load import hnsw_workers_beside_postings
from app.runtime import Runtime
from tests.support.db import chunk_partition, scalar, wait_until
from tests.support.fake_openai import FakeOpenAI, Gate
from tests.support.invariants import settled_violations
from tests.support.jobs import wait_for_job
from tests.support.servers import serve_app
from tests.support.uploads import long_text, upload

# More results than the test's texts have chunks: every match, so that ties at the cut
# cannot differ.
ALL_CHUNKS = 100
# Every upload of two chunks or more into a collection with none is a bulk load.
BULK = {"bulk_load_min_chunks": 2}
STAGED_TABLES = "SELECT count(*) FROM pg_tables WHERE tablename ~ '^staged_[0-9a-f]{32}_'"
STAGED_CHUNKS_TABLE = (
    "SELECT min(tablename) FROM pg_tables WHERE tablename ~ '^staged_[0-9a-f]{32}_chunks$'"
)
# The indexes and constraints of a collection's partition of chunks and of postings, their
# names and keys left out.
DEFINITIONS = r"""
    WITH t(name) AS (
        SELECT chunk_partition_name(:id)
        UNION ALL
        SELECT keyword_partition_name(postings_key)
        FROM keyword_collections WHERE collection_id = :id)
    SELECT array_agg(d ORDER BY d) FROM (
        SELECT regexp_replace(indexdef, 'INDEX \S+ ON \S+', 'INDEX ON') AS d
        FROM pg_indexes JOIN t ON tablename = t.name
        UNION ALL
        SELECT c.contype::text || ' '
               || coalesce((SELECT p.conname FROM pg_constraint p WHERE p.oid = c.conparentid),
                           'of its own') || ' '
               || regexp_replace(replace(pg_get_constraintdef(c.oid), :id, 'ID'), '[0-9]+', 'N')
        FROM pg_constraint c JOIN t ON c.conrelid = to_regclass(t.name)) x
"""
KEYWORD_STATE = """
    SELECT k.deferred, (SELECT count(*) FROM pg_inherits i
                        WHERE i.inhrelid = to_regclass(keyword_partition_name(k.postings_key)))
    FROM keyword_collections k WHERE k.collection_id = :id
"""
# The upload's keyword staging waiting for the lock on keyword_postings the test holds.
KEYWORDS_WAIT = """
    SELECT count(*) > 0 FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query LIKE '%keyword_index_stage%'
"""

ATTACH_WAITS = """
    SELECT count(*) > 0 FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE chunks ATTACH%'
"""

# Slices of 4 chunks, a call each, four at once; a bulk load from 8 chunks on.
STAGED_AHEAD = {"embedding_batch_size": 4, "embedding_concurrency": 4, "bulk_load_min_chunks": 8}


async def workers_sweep(settings: Settings) -> None:
    """What a worker does now and then: its sweep drops, among others, abandoned stagings."""
    runtime = await Runtime.open(settings)
    try:
        await runtime.jobs.sweep()
    finally:
        await runtime.close()


async def staged_rows_at_least(db: AsyncConnection, rows: int, seconds: float = 30) -> int:
    """The rows of the staged table of chunks (whatever its name), once there are `rows`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        name = await scalar(db, STAGED_CHUNKS_TABLE)
        count = await scalar(db, f'SELECT count(*) FROM "{name}"') if name else 0
        await db.rollback()
        if count >= rows:
            return int(count)
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{rows} rows staged: not within {seconds:g} s")
        await asyncio.sleep(0.05)


@pytest.fixture
async def bulk_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings.model_copy(update=BULK)) as client:
        yield client


async def into_new_collection(
    client: httpx.AsyncClient, collection: str, content: str
) -> httpx.Response:
    made = await client.post("/api/collections", json={"id": collection, "name": collection})
    assert made.status_code == 201, made.text
    return await upload(client, content, "a.txt", route=f"/api/collections/{collection}/documents")


async def searched(client: httpx.AsyncClient, collection: str, mode: str, k: int = 5) -> list[Any]:
    answer = await client.post(
        f"/api/collections/{collection}/search",
        json={"query": "Part 3 of the notes", "mode": mode, "k": k},
    )
    assert answer.status_code == 200, answer.text
    return [(r["text"], round(r["score"], 5)) for r in answer.json()["results"]]


def ties_in_any_order(results: list[Any]) -> list[Any]:
    """Results by score, equal scores by text: a tie is broken by chunk id, and a bulk
    load's two fills take their ids from the sequence at once, in no set order."""
    return sorted(results, key=lambda result: (-result[1], result[0]))


async def test_a_bulk_load_answers_indexed_and_searches_as_a_write_through_chunks(
    bulk_client: httpx.AsyncClient,
    settings: Settings,
    db: AsyncConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same text into one collection by a bulk load and into another through `chunks`:
    once the bulk upload answers, its collection has its HNSW index, its postings attached
    and not deferred, nothing staged is left, its table has the same indexes and
    constraints as the other's, and every search mode answers the same texts and scores."""
    caplog.set_level(logging.INFO, logger="app.ingestion.bulk_load")
    content = long_text(20)
    bulk = await into_new_collection(bulk_client, "bulk", content)
    assert bulk.status_code == 201, bulk.text
    state_on_answer = (await db.execute(text(KEYWORD_STATE), {"id": "bulk"})).one()
    await db.commit()
    async with serve_app(settings) as through_client:
        through = await into_new_collection(through_client, "through", content)
        assert through.status_code == 201, through.text
        assert await settled_violations(db) == {}
        results = {
            (collection, mode): ties_in_any_order(
                await searched(through_client, collection, mode, k=ALL_CHUNKS)
            )
            for collection in ("bulk", "through")
            for mode in ("vector", "keyword", "hybrid")
        }

    staged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("staged")]
    assert len(staged) == 1
    # Its chunks were copied into the staged table as they were embedded.
    assert re.fullmatch(
        f"staged {bulk.json()['chunk_count']} chunks for collection bulk in [0-9.]+ s "
        r"\(filled while they were embedded\)",
        staged[0],
    )
    assert tuple(state_on_answer) == (False, 1)
    assert await scalar(db, STAGED_TABLES) == 0
    assert await scalar(db, DEFINITIONS, id="bulk") == await scalar(db, DEFINITIONS, id="through")
    for mode in ("vector", "keyword", "hybrid"):
        assert results["bulk", mode] == results["through", mode], mode
        assert len(results["bulk", mode]) >= 5, mode


async def test_a_bulk_load_whose_collection_got_a_table_meanwhile_writes_through_chunks(
    bulk_client: httpx.AsyncClient, db: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """The test holds up the staging (its keyword part waits for a lock on keyword_postings)
    while the collection's table of chunks is made, as another upload's first fill makes
    it: the commit finds it, drops what it staged and writes through `chunks`."""
    caplog.set_level(logging.INFO, logger="app.ingestion.service")
    async with db.engine.connect() as holder:
        await holder.execute(text("LOCK TABLE keyword_postings IN ACCESS EXCLUSIVE MODE"))
        writing = asyncio.create_task(into_new_collection(bulk_client, "late", long_text()))
        await wait_until(db, KEYWORDS_WAIT, "the keyword staging waiting for its lock")
        staged_meanwhile = await scalar(db, STAGED_TABLES)
        # Keyword searches wait for the test's lock too; a vector search does not.
        searched_meanwhile = await searched(bulk_client, "late", "vector")
        await chunk_partition(db, "late")
        await holder.rollback()
    written = await writing

    assert staged_meanwhile == 1  # the chunks' (the words' is in the waiting transaction)
    assert searched_meanwhile == []
    assert written.status_code == 201, written.text
    assert any("written through chunks" in r.getMessage() for r in caplog.records)
    assert await scalar(db, STAGED_TABLES) == 0
    assert (
        await scalar(db, "SELECT count(*) FROM chunks WHERE collection_id = 'late'")
        == (written.json()["chunk_count"])
    )
    assert await settled_violations(db) == {}


async def test_two_bulk_loads_into_one_new_collection_publish_one_and_write_one_through(
    bulk_client: httpx.AsyncClient, db: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """Two first uploads into one new collection both stage (the test holds both at their
    keyword staging); the first commit publishes its table, and the second, under the same
    partition lock, finds it and writes through `chunks`."""
    caplog.set_level(logging.INFO, logger="app.ingestion")
    made = await bulk_client.post("/api/collections", json={"id": "twin", "name": "twin"})
    assert made.status_code == 201, made.text
    both_wait = KEYWORDS_WAIT.replace("count(*) > 0", "count(*) = 2")
    async with db.engine.connect() as holder:
        await holder.execute(text("LOCK TABLE keyword_postings IN ACCESS EXCLUSIVE MODE"))
        writing = [
            asyncio.create_task(
                upload(
                    bulk_client,
                    long_text(6 + number),
                    f"{number}.txt",
                    route="/api/collections/twin/documents",
                )
            )
            for number in range(2)
        ]
        await wait_until(db, both_wait, "both keyword stagings waiting for the lock")
        await holder.rollback()
    written = await asyncio.gather(*writing)

    assert [answer.status_code for answer in written] == [201, 201], [a.text for a in written]
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("staged")]) == 2
    assert len([m for m in messages if "written through chunks" in m]) == 1
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE collection_id = 'twin'") == sum(
        answer.json()["chunk_count"] for answer in written
    )
    assert await scalar(db, STAGED_TABLES) == 0
    assert await settled_violations(db) == {}


async def test_a_bulk_loads_attach_waits_for_the_writers_in_flight_then_publishes(
    bulk_client: httpx.AsyncClient, db: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """Attaching the staged table takes SHARE ROW EXCLUSIVE on `documents`: while a
    transaction writing documents is open (the test's lock stands for it), the commit
    waits, lets go after ATTACH_LOCK_TIMEOUT_MS and tries again, and once that writer is
    done it publishes what it staged."""
    caplog.set_level(logging.INFO, logger="app.ingestion")
    async with db.engine.connect() as writer:
        await writer.execute(text("LOCK TABLE documents IN ROW EXCLUSIVE MODE"))
        writing = asyncio.create_task(into_new_collection(bulk_client, "busy", long_text()))
        await wait_until(db, ATTACH_WAITS, "the attach waiting for the writer")
        await writer.rollback()
    written = await writing

    assert written.status_code == 201, written.text
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("staged") for m in messages)
    assert not any("written through chunks" in m for m in messages)
    assert await scalar(db, STAGED_TABLES) == 0
    assert await settled_violations(db) == {}


async def test_a_background_upload_is_a_bulk_load_too(
    settings: Settings, db: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """A job processes its version like a synchronous upload commits it: staged for the
    document the upload registered, and published when the job succeeds."""
    caplog.set_level(logging.INFO, logger="app.ingestion.bulk_load")
    with_worker = settings.model_copy(update={**BULK, "worker_in_process": True})
    async with serve_app(with_worker) as client:
        made = await client.post("/api/collections", json={"id": "queued", "name": "q"})
        assert made.status_code == 201, made.text
        accepted = await upload(
            client, long_text(), "a.txt", route="/api/collections/queued/documents?wait=false"
        )
        assert accepted.status_code == 202, accepted.text
        job = await wait_for_job(client, accepted.json()["job_id"])

    assert job["state"] == "succeeded", job
    assert any(
        r.getMessage().startswith(f"staged {job['chunks_stored']} chunks for collection queued")
        for r in caplog.records
    )
    assert (
        await scalar(
            db, "SELECT count(*) FROM chunks WHERE document_id = :id", id=accepted.json()["id"]
        )
        == job["chunks_stored"]
    )
    assert await scalar(db, STAGED_TABLES) == 0
    assert await settled_violations(db) == {}


async def test_the_sweep_drops_staged_tables_only_when_their_stager_is_gone(
    db: AsyncConnection,
) -> None:
    """Tables of a staging whose lock a session holds stay; once it lets go, they go."""
    staging = "0123456789abcdef0123456789abcdef"
    lock = f"SELECT pg_advisory_lock(hashtextextended('staging {staging}', 0))"
    for table in ("chunks", "terms"):
        await db.execute(text(f"CREATE TABLE staged_{staging}_{table} (x integer)"))
    await db.commit()
    async with db.engine.connect() as stager:
        await stager.execute(text(lock))
        await stager.commit()
        while_held = await drop_abandoned_stagings(db.engine)
        left_while_held = await scalar(db, STAGED_TABLES)
    # The connection went back to the pool holding its session lock: let it go.
    await db.engine.dispose()
    after = await drop_abandoned_stagings(db.engine)

    assert while_held == []
    assert left_while_held == 2
    assert sorted(after) == [f"staged_{staging}_chunks", f"staged_{staging}_terms"]
    assert await scalar(db, STAGED_TABLES) == 0


@asynccontextmanager
async def bulk_upload_held_at_its_first_call(
    settings: Settings, upstream: FakeOpenAI, collection: str
) -> AsyncIterator[tuple[Gate, "asyncio.Task[httpx.Response]"]]:
    """A bulk load into a new collection, its first embedding call held (the gate), the
    others answered."""
    gate = upstream.gate("HELDPART")
    async with serve_app(settings.model_copy(update=STAGED_AHEAD)) as client:
        uploading = asyncio.create_task(
            into_new_collection(client, collection, "HELDPART " + long_text(40))
        )
        await gate.until_arrived()
        yield gate, uploading


async def assert_staged_ahead_and_published_whole(
    db: AsyncConnection, caplog: pytest.LogCaptureFixture, answer: httpx.Response
) -> None:
    assert answer.status_code == 201, answer.text
    assert any(r.getMessage().endswith("(filled while they were embedded)") for r in caplog.records)
    assert await scalar(db, STAGED_TABLES) == 0
    partition = await scalar(
        db, "SELECT chunk_partition_name(:id)", id=answer.json()["collection_id"]
    )
    rows = await scalar(db, f"SELECT count(DISTINCT chunk_index) FROM {partition}")
    assert (
        rows
        == answer.json()["chunk_count"]
        == await scalar(db, f"SELECT count(*) FROM {partition}")
    )
    assert await settled_violations(db) == {}


async def test_a_bulk_loads_chunks_are_staged_while_the_rest_is_still_embedded(
    settings: Settings,
    upstream: FakeOpenAI,
    db: AsyncConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once the chunker has made enough chunks for a bulk load, each part stored in the
    cache is copied into the staged table while the first call is still held; the sweep
    spares the staging meanwhile, and the commit starts from it."""
    caplog.set_level(logging.INFO, logger="app.ingestion.bulk_load")
    async with bulk_upload_held_at_its_first_call(settings, upstream, "ahead") as (gate, uploading):
        rows_while_held = await staged_rows_at_least(db, 28)
        await workers_sweep(settings)
        # The sweep spared it: its rows are still there (more may have been copied
        # meanwhile); a dropped staging times out here.
        await staged_rows_at_least(db, rows_while_held, seconds=5)
        assert not uploading.done()
        gate.release()
        answer = await uploading

    assert rows_while_held >= 28
    await assert_staged_ahead_and_published_whole(db, caplog, answer)


async def test_a_staging_ahead_of_a_builder_taken_over_is_swept_and_the_upload_still_lands(
    settings: Settings,
    upstream: FakeOpenAI,
    db: AsyncConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The content's cache entry is taken from its builder (as when the builder stopped
    renewing its lease) while a call is held: the sweep drops that builder's staging; the
    upload builds the content again, stages it again ahead of its commit, and lands."""
    caplog.set_level(logging.INFO, logger="app.ingestion.bulk_load")
    async with bulk_upload_held_at_its_first_call(settings, upstream, "retaken") as (
        gate,
        uploading,
    ):
        await staged_rows_at_least(db, 1)
        first_staging = await scalar(db, STAGED_CHUNKS_TABLE)
        await db.execute(
            text(
                "UPDATE processed_documents SET builder_id = gen_random_uuid(), "
                "lease_until = now() - interval '1 second'"
            )
        )
        await db.commit()
        await workers_sweep(settings)
        # Another may be there: the builder's next store saw it had lost the entry.
        first_left = await scalar(db, "SELECT to_regclass(:name) IS NOT NULL", name=first_staging)
        gate.release()
        answer = await uploading

    assert first_left is False
    await assert_staged_ahead_and_published_whole(db, caplog, answer)


def test_a_quantized_hnsw_build_beside_the_postings_gets_workers_for_the_cores_beyond_two() -> None:
    """One core each for a staging's two connections, PostgreSQL's parallel workers for
    the rest, when the graph is binary-quantized (from 1,024 dimensions); a full-precision
    graph's build keeps PostgreSQL's own number."""
    assert hnsw_workers_beside_postings(1536, cores=1) == 0
    assert hnsw_workers_beside_postings(1536, cores=2) == 0
    assert hnsw_workers_beside_postings(3072, cores=6) == 4
    assert hnsw_workers_beside_postings(384, cores=2) is None
