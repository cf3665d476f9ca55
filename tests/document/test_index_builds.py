"""Chunks written into a collection that has its HNSW index join its graph after the write
answers (app/document/index_builds.py): meanwhile searches find them by an exact scan
beside the graph, and nothing is lost, doubled or brought back by the work after.

The tests hold the lock that additions to a collection's graph take, to stop them at a
known point. (The first fill's deferred build is tested in test_partitions.py.)"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.document.index_builds import VectorIndexBuilds
from app.document.partitions import graph_lock_key
from app.runtime import Runtime
from tests.support.db import scalar, vector_index_built, wait_until
from tests.support.fake_openai import FakeOpenAI
from tests.support.invariants import settled_violations
from tests.support.servers import serve_app
from tests.support.uploads import long_text, stored_in

# Words of their own, so a question finds these chunks first in every mode.
LATER_TEXT = "".join(
    f"Section {n}. Zebra orchards glow under quantum lanterns while marmosets "
    "juggle tangerines beside the velvet observatory. " * 4
    for n in range(4)
)
QUESTION = "zebra orchards quantum lanterns marmosets tangerines"
PENDING = "SELECT count(*) FROM chunks WHERE collection_id = :id AND NOT in_graph"
WAITING_ADDITION = """
    SELECT count(*) FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
      AND query LIKE '%pg_advisory_xact_lock%'
"""
IN_GRAPH_OF = """
    SELECT array_agg(DISTINCT c.in_graph) FROM chunks c
    JOIN documents d ON d.id = c.document_id
    WHERE c.collection_id = :id AND d.filename = :filename
"""


@asynccontextmanager
async def graph_held(db: AsyncConnection, collection: str) -> AsyncIterator[None]:
    """The locks of additions to the collection's graph (every lane), held by the test:
    they wait."""
    partition = await scalar(db, "SELECT chunk_partition_name(:id)", id=collection)
    for lane in range(VectorIndexBuilds.GRAPH_LANES):
        await db.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": graph_lock_key(partition, lane)},
        )
    try:
        yield
    finally:
        await db.rollback()


async def indexed_collection(client: httpx.AsyncClient, db: AsyncConnection) -> None:
    """Collection `c` with a first document and its HNSW index."""
    await stored_in(client, "c", long_text())
    await vector_index_built(db, "c")


async def search(
    client: httpx.AsyncClient, mode: str, filters: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": QUESTION, "mode": mode, "k": 3}
    if filters is not None:
        body["filters"] = filters
    answer = await client.post("/api/collections/c/search", json=body)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


async def graph_caught_up(db: AsyncConnection) -> None:
    await wait_until(db, f"SELECT ({PENDING}) = 0", "the graph to take every chunk", id="c")


async def test_a_write_into_an_indexed_collection_answers_before_its_chunks_join_the_graph(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """The upload answers 201 while the addition waits; every search mode finds the new
    document meanwhile (its chunks by the exact scan), filtered searches too, on the
    document's columns or the chunks' metadata; then they join the graph."""
    await indexed_collection(client, db)
    async with graph_held(db, "c"):
        later = await stored_in(client, "c", LATER_TEXT, "later.txt")
        async with db.engine.connect() as observer:
            await wait_until(observer, WAITING_ADDITION, "the graph addition waiting")
            pending = await scalar(observer, PENDING, id="c")
            first_in_graph = await scalar(observer, IN_GRAPH_OF, id="c", filename="a.txt")
            await observer.rollback()
        indexing_during = (await client.get("/api/collections/c")).json()["indexing"]
        during = {mode: await search(client, mode) for mode in ("vector", "hybrid", "keyword")}
        by_filename = await search(
            client, "vector", {"type": "eq", "key": "filename", "value": "later.txt"}
        )
        by_other_filename = await search(
            client, "hybrid", {"type": "eq", "key": "filename", "value": "a.txt"}
        )
        by_metadata = await search(
            client, "vector", {"type": "in", "key": "chunk_index", "value": [0, 1]}
        )
    await graph_caught_up(db)
    after = {mode: await search(client, mode) for mode in ("vector", "hybrid")}
    indexing_after = (await client.get("/api/collections/c")).json()["indexing"]

    assert later["status"] == "completed"
    assert pending == later["chunk_count"] > 0
    assert (indexing_during["complete"], indexing_during["chunks_outside_graph"]) == (
        False,
        pending,
    )
    assert (indexing_after["complete"], indexing_after["chunks_outside_graph"]) == (True, 0)
    assert first_in_graph == [True]
    for mode, results in {**during, **after}.items():
        assert [result["filename"] for result in results] == ["later.txt"] * 3, mode
    assert during["vector"] == after["vector"]
    assert [result["filename"] for result in by_filename] == ["later.txt"] * 3
    assert [result["filename"] for result in by_other_filename] == ["a.txt"] * 3
    assert {(r["filename"], r["metadata"]["chunk_index"]) for r in by_metadata} >= {
        ("later.txt", 0),
        ("later.txt", 1),
    }
    assert await scalar(db, IN_GRAPH_OF, id="c", filename="later.txt") == [True]
    assert await settled_violations(db) == {}


async def test_a_pending_document_deleted_or_replaced_stays_gone_or_replaced(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """Deleting one document and replacing another while their chunks wait for the graph:
    the addition that runs after neither brings old chunks back nor loses new ones."""
    await indexed_collection(client, db)
    async with graph_held(db, "c"):
        doomed = await stored_in(client, "c", LATER_TEXT, "doomed.txt")
        await stored_in(client, "c", long_text(3), "replaced.txt")
        deleted = await client.delete(f"/api/collections/c/documents/{doomed['id']}")
        replaced = await stored_in(client, "c", long_text(5), "replaced.txt")
    await graph_caught_up(db)

    assert deleted.status_code == 204, deleted.text
    assert replaced["chunk_count"] == await scalar(
        db,
        "SELECT count(*) FROM chunks WHERE document_id = CAST(:id AS uuid) AND in_graph",
        id=replaced["id"],
    )
    assert await scalar(db, "SELECT count(*) FROM documents WHERE filename = 'doomed.txt'") == 0
    assert "doomed.txt" not in {result["filename"] for result in await search(client, "vector")}
    assert await settled_violations(db) == {}


async def test_a_write_keeps_the_graph_itself_while_too_many_chunks_wait(
    settings: Settings, db: AsyncConnection
) -> None:
    """With RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS chunks already waiting, the next
    write puts its chunks into the graph in its own transaction, so an exact scan never
    grows past about that many."""
    bounded = settings.model_copy(update={"vector_index_deferred_max_chunks": 2})
    async with serve_app(bounded) as client:
        await indexed_collection(client, db)
        async with graph_held(db, "c"):
            waiting = await stored_in(client, "c", long_text(3), "waiting.txt")
            kept = await stored_in(client, "c", long_text(4), "kept.txt")
            async with db.engine.connect() as observer:
                flags = {
                    name: await scalar(observer, IN_GRAPH_OF, id="c", filename=name)
                    for name in ("waiting.txt", "kept.txt")
                }
        await graph_caught_up(db)

    assert waiting["chunk_count"] >= 2
    assert kept["status"] == "completed"
    assert flags == {"waiting.txt": [False], "kept.txt": [True]}
    assert await settled_violations(db) == {}


async def test_chunks_a_dead_process_left_out_of_the_graph_are_added_by_the_sweep(
    client: httpx.AsyncClient, db: AsyncConnection, settings: Settings
) -> None:
    """A process killed between committing a write and adding its chunks leaves them
    pending (the test marks some so): searches still find them, and a worker's sweep adds
    them."""
    await indexed_collection(client, db)
    await stored_in(client, "c", LATER_TEXT, "later.txt")
    await graph_caught_up(db)
    await db.execute(
        text(
            "UPDATE chunks c SET in_graph = false FROM documents d "
            "WHERE d.id = c.document_id AND d.filename = 'later.txt'"
        )
    )
    await db.commit()
    left_out = await scalar(db, PENDING, id="c")
    found_meanwhile = await search(client, "vector")

    runtime = await Runtime.open(settings)
    try:
        await runtime.jobs.sweep()
    finally:
        await runtime.close()

    assert left_out > 0
    assert [result["filename"] for result in found_meanwhile] == ["later.txt"] * 3
    assert await scalar(db, PENDING, id="c") == 0
    assert await search(client, "vector") == found_meanwhile
    assert await settled_violations(db) == {}


async def test_a_write_of_many_batches_joins_the_graph_in_every_lane(
    client: httpx.AsyncClient, db: AsyncConnection, settings: Settings
) -> None:
    """A write of more than one batch of chunks is added to the graph by every lane at
    once (each in its own transaction, on its own core), and a small one by one lane;
    between them they add every chunk, once."""
    await indexed_collection(client, db)
    many = VectorIndexBuilds.ADD_BATCH + 5
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((many, settings.embedding_dimensions)).astype(np.float32)
    runtime = await Runtime.open(settings)
    try:
        async with graph_held(db, "c"):
            await runtime.ingestion.insert_texts("c", ["one small text"], vectors[:1])
            async with db.engine.connect() as observer:
                await wait_until(observer, WAITING_ADDITION, "the small write's addition")
                lanes_for_small = await scalar(observer, WAITING_ADDITION)
                await runtime.ingestion.insert_texts(
                    "c", [f"text number {n}" for n in range(many)], vectors
                )
                await wait_until(
                    observer,
                    f"SELECT ({WAITING_ADDITION}) = :lanes",
                    "both lanes waiting",
                    lanes=VectorIndexBuilds.GRAPH_LANES,
                )
                pending = await scalar(observer, PENDING, id="c")
                await observer.rollback()
        await runtime.index_builds.wait()
    finally:
        await runtime.close()

    assert lanes_for_small == 1
    assert pending == many + 1
    assert await scalar(db, PENDING, id="c") == 0
    assert await settled_violations(db) == {}


async def test_a_second_lane_leaves_the_cores_to_an_upload_in_flight(
    client: httpx.AsyncClient, db: AsyncConnection, settings: Settings, upstream: FakeOpenAI
) -> None:
    """While another upload of the process (into another collection) waits for its
    embeddings, a large write is added to the graph by one lane only: the second took a
    core from that upload. When it ends, the second lane resumes."""
    await indexed_collection(client, db)
    many = VectorIndexBuilds.ADD_BATCH + 5
    vectors = np.random.default_rng(2).standard_normal((many, settings.embedding_dimensions))
    gate = upstream.gate("HELDUPLOAD")
    runtime = await Runtime.open(settings)
    try:
        async with graph_held(db, "c"):
            in_flight = asyncio.create_task(
                runtime.ingestion.insert_texts("d", ["HELDUPLOAD waits for its vectors"])
            )
            await gate.until_arrived()
            await runtime.ingestion.insert_texts(
                "c", [f"text number {n}" for n in range(many)], vectors.astype(np.float32)
            )
            async with db.engine.connect() as observer:
                await wait_until(observer, WAITING_ADDITION, "the first lane waiting")
                # Both lanes start together: had the second run, it would wait here too.
                await asyncio.sleep(0.5)
                lanes_while_in_flight = await scalar(observer, WAITING_ADDITION)
                await observer.rollback()
                gate.release()
                await in_flight
                lanes_after = await wait_until(
                    observer,
                    f"SELECT nullif(({WAITING_ADDITION}), 1)",
                    "the second lane back",
                )
                await observer.rollback()
        await runtime.index_builds.wait()
    finally:
        gate.release()
        await runtime.close()

    assert lanes_while_in_flight == 1
    assert lanes_after == VectorIndexBuilds.GRAPH_LANES
    assert await scalar(db, PENDING, id="c") == 0
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE text LIKE 'HELDUPLOAD%'") == 1
    assert await settled_violations(db) == {}
