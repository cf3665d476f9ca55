"""Uploads at once keep out of each other's way: an upload's table of chunks is made while
its content is embedded, not beside another upload's commit, and an index built while
another upload is in flight leaves it a core (app/ingestion/service.py, _PartitionAhead;
app/document/index_builds.py)."""

import asyncio
import logging

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from app.db.repository import without_parallel_workers
from app.runtime import Runtime
from tests.support.db import scalar, wait_until
from tests.support.fake_openai import FakeOpenAI
from tests.support.invariants import settled_violations
from tests.support.servers import serve_app
from tests.support.uploads import long_text, upload

HAS_TABLE = "SELECT to_regclass(chunk_partition_name(:id)) IS NOT NULL"
# The attach of a collection's table, waiting for the transaction writing documents.
ATTACH_WAITS = """
    SELECT count(*) > 0 FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE chunks ATTACH%'
"""


def built_messages(caplog: pytest.LogCaptureFixture, collection: str) -> list[str]:
    messages = (record.getMessage() for record in caplog.records)
    return [
        m
        for m in messages
        if m.startswith(f"built the deferred vector index of collection {collection}")
    ]


async def new_collection(client: httpx.AsyncClient, collection: str) -> None:
    made = await client.post("/api/collections", json={"id": collection, "name": collection})
    assert made.status_code == 201, made.text


async def test_an_uploads_table_is_made_while_its_content_is_embedded(
    client: httpx.AsyncClient, db: AsyncConnection, upstream: FakeOpenAI
) -> None:
    """The test holds the upload's embedding call, and a lock on `documents` as another
    upload's commit would: the table's attach waits for it meanwhile, not after the call,
    and once both are let go the upload commits into the table it made."""
    await new_collection(client, "early")
    gate = upstream.gate("EARLYTABLE")
    try:
        await db.execute(text("LOCK TABLE documents IN ROW EXCLUSIVE MODE"))
        uploading = asyncio.create_task(
            upload(
                client,
                "EARLYTABLE " + long_text(),
                "a.txt",
                route="/api/collections/early/documents",
            )
        )
        await gate.until_arrived()
        async with db.engine.connect() as observer:
            await wait_until(observer, ATTACH_WAITS, "the table's attach waiting for documents")
            await observer.rollback()
        await db.rollback()
        await wait_until(db, HAS_TABLE, "the collection's table", id="early")
        table_before_the_answer = not uploading.done()
        await db.rollback()
    finally:
        gate.release()
    answer = await uploading

    assert table_before_the_answer
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "completed"
    assert (
        await scalar(db, "SELECT count(*) FROM chunks WHERE collection_id = 'early'")
        == answer.json()["chunk_count"]
    )
    assert await settled_violations(db) == {}


async def test_an_upload_large_enough_for_a_bulk_load_makes_no_table_before_its_commit(
    settings: Settings, db: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """Its chunks are staged and published as the collection's table (bulk_load.py). A
    table made while they were embedded would have made the staging unusable, and the
    upload would have been written through `chunks` instead."""
    caplog.set_level(logging.INFO, logger="app.ingestion")
    async with serve_app(settings.model_copy(update={"bulk_load_min_chunks": 2})) as client:
        await new_collection(client, "bulk")
        answer = await upload(client, long_text(), "a.txt", route="/api/collections/bulk/documents")

    messages = [record.getMessage() for record in caplog.records]
    assert answer.status_code == 201, answer.text
    assert any(m.startswith("staged ") and " chunks for collection bulk in " in m for m in messages)
    assert not [m for m in messages if "is written through chunks" in m]
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM pg_indexes WHERE tablename = chunk_partition_name('bulk') "
            "AND indexdef LIKE '%USING hnsw%'",
        )
        == 1
    )
    assert await settled_violations(db) == {}


async def test_parallel_workers_are_off_for_the_transaction_only(db: AsyncConnection) -> None:
    async with AsyncSession(bind=db) as session:
        await without_parallel_workers(session)
        during = (
            await session.execute(
                text(
                    "SELECT current_setting('max_parallel_workers_per_gather'), "
                    "current_setting('max_parallel_maintenance_workers')"
                )
            )
        ).one()
        await session.commit()
    after = await scalar(db, "SELECT current_setting('max_parallel_maintenance_workers')")

    assert tuple(during) == ("0", "0")
    assert after != "0"


async def test_a_deferred_index_build_keeps_to_one_core_while_another_upload_is_in_flight(
    settings: Settings,
    db: AsyncConnection,
    upstream: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A first fill's index, built after its answer while another upload of the process
    waits for its embeddings, is built without PostgreSQL's parallel workers; with no
    other upload in flight, with them."""
    caplog.set_level(logging.INFO, logger="app.document.index_builds")
    gate = upstream.gate("HELDUPLOAD")
    runtime = await Runtime.open(settings)
    try:
        in_flight = asyncio.create_task(
            runtime.ingestion.insert_texts("held", ["HELDUPLOAD waits for its vectors"])
        )
        await gate.until_arrived()
        await runtime.ingestion.insert_texts("beside", [f"text number {n}" for n in range(5)])
        await runtime.index_builds.wait()
        beside = built_messages(caplog, "beside")
        gate.release()
        await in_flight
        await runtime.ingestion.insert_texts("alone", [f"text number {n}" for n in range(5)])
        await runtime.index_builds.wait()
        alone = built_messages(caplog, "alone")
    finally:
        gate.release()
        await runtime.close()

    assert beside == [
        "built the deferred vector index of collection beside on one core (an upload was in flight)"
    ]
    assert alone == ["built the deferred vector index of collection alone"]
    for collection in ("held", "beside", "alone"):
        assert (
            await scalar(
                db,
                "SELECT count(*) FROM pg_indexes WHERE tablename = chunk_partition_name(:id) "
                "AND indexdef LIKE '%USING hnsw%'",
                id=collection,
            )
            == 1
        ), collection
    assert await settled_violations(db) == {}
