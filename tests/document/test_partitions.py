"""Each collection's chunks are a partition of `chunks`, whose HNSW index and BM25 postings
(migration 0015) are built over the first chunks written: in the transaction that commits
them (app/document/partitions.py), or just after it for up to
RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS of them (app/document/index_builds.py)."""

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.document.partitions import drop_orphaned_partitions, keyword_lock_key
from app.runtime import Runtime
from tests.support.db import chunk_partition, scalar, vector_index_built, wait_until
from tests.support.invariants import settled_violations, violations
from tests.support.servers import serve_app
from tests.support.uploads import long_text, stored_in, upload

WAITING_BUILD = """
    SELECT count(*) FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query LIKE 'CREATE INDEX%'
"""
INDEX_OID = (
    "SELECT oid FROM pg_class WHERE relname = chunk_partition_name('c') || '_embedding_hnsw'"
)
VECTOR_INDEXES = """
    SELECT count(*) FROM pg_indexes
    WHERE tablename = chunk_partition_name(:id) AND indexdef LIKE '%USING hnsw%'
"""


# Every first fill indexed before its answer, as collections larger than the deferred
# build's bound are.
INDEXED_BEFORE_ANSWER = {"vector_index_deferred_max_chunks": 0}


@pytest.fixture
async def indexing_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings.model_copy(update=INDEXED_BEFORE_ANSWER)) as client:
        yield client


async def indexed(db: AsyncConnection, collection: str) -> None:
    await wait_until(
        db, f"SELECT ({VECTOR_INDEXES}) = 1", f"the HNSW index of {collection}", id=collection
    )


async def search(client: httpx.AsyncClient, collection: str, mode: str) -> list[dict[str, Any]]:
    answer = await client.post(
        f"/api/collections/{collection}/search", json={"query": "Part 3", "mode": mode, "k": 3}
    )
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


async def test_searches_go_on_while_a_collections_first_chunks_are_indexed(
    indexing_client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """The test holds a lock that the index build waits for, after the chunks and their
    keyword index are written: meanwhile searches of that collection answer, without the
    document, and so do searches of another; once the build goes on, both find it."""
    client = indexing_client
    for collection in ("fresh", "other"):
        made = await client.post("/api/collections", json={"id": collection, "name": collection})
        assert made.status_code == 201, made.text
    other = await upload(client, long_text(), "a.txt", route="/api/collections/other/documents")
    assert other.status_code == 201, other.text
    partition = await chunk_partition(db, "fresh")
    # The build needs SHARE on the partition; the writes before it need ROW EXCLUSIVE only.
    await db.execute(text(f"LOCK TABLE {partition} IN ROW EXCLUSIVE MODE"))

    writing = asyncio.create_task(
        upload(client, long_text(), "a.txt", route="/api/collections/fresh/documents")
    )
    async with db.engine.connect() as observer:
        await wait_until(observer, WAITING_BUILD, "the index build waiting for its lock")
        during = {mode: await search(client, "fresh", mode) for mode in ("vector", "hybrid")}
        other_during = await search(client, "other", "vector")
        indexes_during = await observer.scalar(text(VECTOR_INDEXES), {"id": "fresh"})
        await observer.rollback()
    await db.rollback()
    written = await writing
    after = {mode: await search(client, "fresh", mode) for mode in ("vector", "hybrid")}

    assert during == {"vector": [], "hybrid": []}
    assert [result["filename"] for result in other_during] == ["a.txt"] * 3
    assert indexes_during == 0
    assert written.status_code == 201, written.text
    for mode, results in after.items():
        assert len(results) == 3, mode
        assert "Part 3" in results[0]["text"], mode
    assert await scalar(db, VECTOR_INDEXES, id="fresh") == 1
    assert await settled_violations(db) == {}


async def test_a_second_upload_keeps_the_index_the_first_built(
    indexing_client: httpx.AsyncClient, db: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the first chunks build the index (with RAGSTORE_INDEX_BUILD_MEMORY_MB of
    maintenance_work_mem); later ones keep it up to date, and a collection's chunks never
    land in another's partition."""
    client = indexing_client
    caplog.set_level(logging.INFO, logger="app.document.partitions")
    made = await client.post("/api/collections", json={"id": "c", "name": "c"})
    assert made.status_code == 201, made.text
    for number in range(2):
        stored = await upload(
            client, long_text(), f"{number}.txt", route="/api/collections/c/documents"
        )
        assert stored.status_code == 201, stored.text
        if number == 0:
            first_chunks = stored.json()["chunk_count"]
    index_before = await scalar(db, INDEX_OID)
    assert index_before is not None
    third = await upload(client, long_text(), "3.txt", route="/api/collections/c/documents")

    assert third.status_code == 201, third.text
    builds = [r.getMessage() for r in caplog.records if "built the HNSW index" in r.getMessage()]
    assert len(builds) == 1
    assert re.fullmatch(
        f"built the HNSW index of collection c over its first {first_chunks} chunks "
        r"in [0-9.]+ s \(maintenance_work_mem 512 MB\)",
        builds[0],
    )
    assert await scalar(db, INDEX_OID) == index_before
    assert await scalar(db, "SELECT count(DISTINCT tableoid) FROM chunks") == 1
    assert await settled_violations(db) == {}


async def test_a_small_first_fill_answers_before_its_index_and_is_searched_meanwhile(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """Up to RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS first chunks are committed and
    answered, then indexed: the test holds the lock the build waits for, and meanwhile
    searches find the document by scanning the partition; a second upload waits for the
    build; once it goes on, the index is there and nothing is out of place."""
    made = await client.post("/api/collections", json={"id": "fresh", "name": "fresh"})
    assert made.status_code == 201, made.text
    partition = await chunk_partition(db, "fresh")
    await db.execute(text(f"LOCK TABLE {partition} IN ROW EXCLUSIVE MODE"))

    written = await upload(client, long_text(), "a.txt", route="/api/collections/fresh/documents")
    async with db.engine.connect() as observer:
        await wait_until(observer, WAITING_BUILD, "the deferred index build waiting for its lock")
        during = {mode: await search(client, "fresh", mode) for mode in ("vector", "hybrid")}
        indexes_during = await observer.scalar(text(VECTOR_INDEXES), {"id": "fresh"})
        listed = await client.get("/api/collections")
        outside_during = {
            c["id"]: c["indexing"]["chunks_outside_graph"] for c in listed.json()["data"]
        }
        await observer.rollback()
    second = asyncio.create_task(
        upload(client, long_text(3), "b.txt", route="/api/collections/fresh/documents")
    )
    await db.rollback()
    second_written = await second
    await indexed(db, "fresh")

    assert written.status_code == 201, written.text
    assert written.json()["status"] == "completed"
    assert indexes_during == 0
    assert outside_during == {"fresh": written.json()["chunk_count"]}
    for mode, results in during.items():
        assert len(results) == 3, mode
        assert "Part 3" in results[0]["text"], mode
    assert second_written.status_code == 201, second_written.text
    assert len(await search(client, "fresh", "vector")) == 3
    assert await settled_violations(db) == {}


async def test_more_new_collections_at_once_than_builds_at_once_all_get_their_index(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """Deferred builds run two at a time (each holds a core and a connection); the rest
    wait their turn and are built too."""
    names = [f"new-{n}" for n in range(5)]
    for name in names:
        made = await client.post("/api/collections", json={"id": name, "name": name})
        assert made.status_code == 201, made.text
    answers = await asyncio.gather(
        *(
            upload(client, long_text(3), "a.txt", route=f"/api/collections/{name}/documents")
            for name in names
        )
    )

    assert [answer.status_code for answer in answers] == [201] * len(names)
    for name in names:
        await indexed(db, name)
    assert await settled_violations(db) == {}


# A first fill's keyword index (migration 0015).
KEYWORD_TEXTS = {
    "engines.txt": "The rocket engine burns kerosene. Rocket engines roar; the engine heats.",
    "rivers.txt": "A quiet river runs past the old mill, where boats drift downstream.",
    "boats.txt": "Engines on river boats burn diesel, not kerosene, and the river carries them.",
}
KEYWORD_QUESTION = "rocket engine kerosene river"
KEYWORDS_DEFERRED = "SELECT deferred FROM keyword_collections WHERE collection_id = :id"
COLLECTION_POSTINGS = """
    SELECT count(*) FROM keyword_postings p JOIN chunks c ON c.id = p.chunk_id
    WHERE c.collection_id = :id
"""
# The collection's table of postings (migrations 0016 and 0017): missing, or its own primary
# key and its part of the partitioned index.
POSTINGS_TABLE = """
    SELECT CASE WHEN t.oid IS NULL THEN 'missing' ELSE format('key %s, index %s',
        (SELECT count(*) FROM pg_constraint WHERE conrelid = t.oid AND contype = 'p'),
        (SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
         WHERE x.indrelid = t.oid
           AND i.inhparent = 'ix_keyword_postings_term_id_impact'::regclass)) END
    FROM (SELECT to_regclass(keyword_partition_name(k.postings_key)) AS oid
          FROM (SELECT) one
          LEFT JOIN keyword_collections k ON k.collection_id = :id) t
"""
POSTINGS_TABLE_NAME = """
    SELECT keyword_partition_name(postings_key) FROM keyword_collections WHERE collection_id = :id
"""
WAITING_KEYWORD_BUILD = """
    SELECT count(*) FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
      AND query LIKE '%pg_advisory_xact_lock%'
"""


@asynccontextmanager
async def keyword_build_held(db: AsyncConnection, collection: str) -> AsyncIterator[None]:
    """The lock a build of the collection's deferred keyword index takes, held by the test."""
    partition = await chunk_partition(db, collection)
    await db.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": keyword_lock_key(partition)},
    )
    try:
        yield
    finally:
        await db.rollback()


@asynccontextmanager
async def keyword_build_waiting(
    client: httpx.AsyncClient, db: AsyncConnection, collection: str
) -> AsyncIterator[AsyncConnection]:
    """A new collection whose first upload (engines.txt) has answered and has its HNSW
    index, while its keyword build waits for the test's lock; an observer's connection.
    Leaving releases the build."""
    made = await client.post("/api/collections", json={"id": collection, "name": collection})
    assert made.status_code == 201, made.text
    async with keyword_build_held(db, collection):
        first = await upload(
            client,
            KEYWORD_TEXTS["engines.txt"],
            "engines.txt",
            route=f"/api/collections/{collection}/documents",
        )
        assert first.status_code == 201, first.text
        async with db.engine.connect() as observer:
            await vector_index_built(observer, collection)
            await wait_until(observer, WAITING_KEYWORD_BUILD, "the keyword build waiting")
            yield observer


async def keyword_scores(
    client: httpx.AsyncClient, collection: str, mode: str, filters: dict[str, Any] | None = None
) -> list[tuple[str, float]]:
    body: dict[str, Any] = {"query": KEYWORD_QUESTION, "mode": mode, "k": 10}
    if filters is not None:
        body["filters"] = filters
    answer = await client.post(f"/api/collections/{collection}/search", json=body)
    assert answer.status_code == 200, answer.text
    return [(result["filename"], result["score"]) for result in answer.json()["results"]]


def same_scores(actual: list[tuple[str, float]], expected: list[tuple[str, float]]) -> bool:
    """The same files in the same order, with the same scores."""
    return [name for name, _ in actual] == [name for name, _ in expected] and [
        score for _, score in actual
    ] == pytest.approx([score for _, score in expected], rel=1e-6)


async def test_a_first_fills_keyword_index_is_built_after_it_answers_with_the_same_scores(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """A collection's first chunks answer before their BM25 postings are built (the test
    holds the lock the build waits for). Meanwhile more uploads and a delete go on, and
    keyword and hybrid searches score the chunks from their words: once the build goes
    on, the index holds every chunk, and every search gives the same scores as before."""
    route = "/api/collections/fresh/documents"
    async with keyword_build_waiting(client, db, "fresh") as observer:
        for name in ("rivers.txt", "boats.txt"):
            written = await upload(client, KEYWORD_TEXTS[name], name, route=route)
            assert written.status_code == 201, written.text
        gone = await upload(client, "A rocket engine that was never kept.", "gone.txt", route=route)
        deleted = await client.delete(f"{route}/{gone.json()['id']}")
        deferred_during = await scalar(observer, KEYWORDS_DEFERRED, id="fresh")
        postings_during = await scalar(observer, COLLECTION_POSTINGS, id="fresh")
        table_during = await scalar(observer, POSTINGS_TABLE, id="fresh")
        await observer.rollback()
        boats_only = {"type": "eq", "key": "filename", "value": "boats.txt"}
        during = {
            "keyword": await keyword_scores(client, "fresh", "keyword"),
            "hybrid": await keyword_scores(client, "fresh", "hybrid"),
            "filtered": await keyword_scores(client, "fresh", "keyword", boats_only),
        }
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="fresh")
    after = {
        "keyword": await keyword_scores(client, "fresh", "keyword"),
        "hybrid": await keyword_scores(client, "fresh", "hybrid"),
        "filtered": await keyword_scores(client, "fresh", "keyword", boats_only),
    }

    assert deleted.status_code == 204, deleted.text
    assert (deferred_during, postings_during) == (True, 0)
    # The postings get a table of their own when they are built, indexed after their rows.
    assert table_during == "missing"
    assert await scalar(db, POSTINGS_TABLE, id="fresh") == "key 1, index 1"
    assert [name for name, _ in during["keyword"]] == ["engines.txt", "boats.txt", "rivers.txt"]
    assert [name for name, _ in during["filtered"]] == ["boats.txt"]
    for search_mode, scores in during.items():
        assert same_scores(after[search_mode], scores), search_mode
    assert await scalar(db, COLLECTION_POSTINGS, id="fresh") > 0
    assert await settled_violations(db) == {}


async def test_a_collection_says_whether_its_indexes_have_caught_up_with_its_chunks(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """GET /api/collections/{id} says what searches scan meanwhile: after a new
    collection's first upload, its BM25 postings still being built (the test holds the
    build), then nothing once they are."""
    async with keyword_build_waiting(client, db, "fresh") as observer:
        during = await client.get("/api/collections/fresh")
        await observer.rollback()
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="fresh")
    after = await client.get("/api/collections/fresh")

    assert during.status_code == 200, during.text
    assert during.json()["indexing"] == {
        "complete": False,
        "chunks_outside_graph": 0,
        "keyword_index_deferred": True,
    }
    assert after.json()["indexing"] == {
        "complete": True,
        "chunks_outside_graph": 0,
        "keyword_index_deferred": False,
    }


LOCK_WAITS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query LIKE :pattern AND pid <> pg_backend_pid()
"""


async def test_a_first_fills_postings_table_is_attached_while_postings_are_being_read(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """A new collection's postings table is attached with SHARE UPDATE EXCLUSIVE on
    `keyword_postings` (migration 0016): it waits for no reader of other collections'
    postings. The test holds a transaction that has read them, and the new collection's
    postings are built and searched meanwhile."""
    await stored_in(client, "old", KEYWORD_TEXTS["rivers.txt"])
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="old")
    # db's transaction reads the postings and holds on to them.
    reading = await db.scalar(text(COLLECTION_POSTINGS), {"id": "old"})
    held = await db.scalar(
        text(
            "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
            "AND relation = 'keyword_postings'::regclass AND granted"
        )
    )

    written = await stored_in(client, "new", KEYWORD_TEXTS["boats.txt"], "boats.txt")
    async with db.engine.connect() as observer:
        await wait_until(observer, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the build", id="new")
        table = await observer.scalar(text(POSTINGS_TABLE), {"id": "new"})
    found = await keyword_scores(client, "new", "keyword")
    await db.rollback()

    assert reading > 0
    assert held == 1
    assert written["status"] == "completed"
    assert table == "key 1, index 1"
    assert [name for name, _ in found] == ["boats.txt"]
    assert await settled_violations(db) == {}


async def test_a_keyword_build_and_a_detach_of_postings_never_deadlock(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """A new collection's keyword build makes its table of postings and stops at its words
    (the test locks `keyword_terms`); the sweep's DETACH ... CONCURRENTLY of a deleted
    collection's postings begins meanwhile and waits for the build's transaction, as for
    every transaction that has `keyword_postings` open. It holds no lock on the table while
    it waits, so the build's attach goes on, and then the detach finishes."""
    await stored_in(client, "gone", KEYWORD_TEXTS["rivers.txt"])
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="gone")
    gone_postings = await scalar(db, POSTINGS_TABLE_NAME, id="gone")
    assert (await client.delete("/api/collections/gone")).status_code == 204
    stopper = await db.engine.connect()
    detacher = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with keyword_build_waiting(client, db, "fresh"):
            await stopper.execute(text("LOCK TABLE keyword_terms IN SHARE MODE"))
        # The build goes on (the test's advisory lock is gone with its transaction).
        async with db.engine.connect() as observer, detacher.connect() as detaching:
            await wait_until(
                observer, LOCK_WAITS, "the build stopped", pattern="%keyword_index_build%"
            )
            detach = asyncio.create_task(
                detaching.execute(
                    text(
                        f"ALTER TABLE keyword_postings DETACH PARTITION {gone_postings} "
                        "CONCURRENTLY"
                    )
                )
            )
            await wait_until(observer, LOCK_WAITS, "the detach waiting", pattern="%DETACH%")
            await observer.rollback()
            await stopper.rollback()
            await detach
            await detaching.execute(text(f"DROP TABLE {gone_postings}"))
    finally:
        await stopper.close()
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="fresh")

    assert await scalar(db, POSTINGS_TABLE, id="fresh") == "key 1, index 1"
    found = [name for name, _ in await keyword_scores(client, "fresh", "keyword")]
    assert found == ["engines.txt"]
    assert await settled_violations(db) == {}


@pytest.mark.parametrize("first", ["build", "writer"])
async def test_a_write_and_the_keyword_build_of_its_collection_take_turns(
    client: httpx.AsyncClient, db: AsyncConnection, first: str
) -> None:
    """Whichever of the two takes the collection's statistics row first, the other waits
    for it and then reads what it committed: every chunk of both uploads ends up in the
    keyword index exactly once. The test stops the first at a known point, inside its
    transaction: the build at its words (a lock on `keyword_terms`), or the writer after its
    chunks (a lock on `document_files`, whose rows it removes before it commits)."""
    route = "/api/collections/race/documents"
    stopper = await db.engine.connect()
    try:
        async with keyword_build_waiting(client, db, "race") as observer:
            if first == "build":
                await stopper.execute(text("LOCK TABLE keyword_terms IN SHARE MODE"))
            else:
                await stopper.execute(text("LOCK TABLE document_files IN EXCLUSIVE MODE"))
                writing = asyncio.create_task(
                    upload(client, KEYWORD_TEXTS["boats.txt"], "boats.txt", route=route)
                )
                await wait_until(
                    observer, LOCK_WAITS, "the writer stopped", pattern="%document_files%"
                )
        # The build goes on (the test's advisory lock is gone with its transaction).
        async with db.engine.connect() as observer:
            if first == "build":
                await wait_until(
                    observer, LOCK_WAITS, "the build stopped", pattern="%keyword_index_build%"
                )
                writing = asyncio.create_task(
                    upload(client, KEYWORD_TEXTS["boats.txt"], "boats.txt", route=route)
                )
            await wait_until(
                observer,
                f"SELECT ({LOCK_WAITS}) = 2",
                "the second waiting for the first",
                pattern="%",
            )
            await observer.rollback()
        await stopper.rollback()
        written = await writing
    finally:
        await stopper.close()
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="race")

    assert written.status_code == 201, written.text
    names = [name for name, _ in await keyword_scores(client, "race", "keyword")]
    assert sorted(names) == ["boats.txt", "engines.txt"]
    assert await settled_violations(db) == {}


async def test_a_collection_deleted_during_its_keyword_build_waits_for_it(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """The build holds the collection's statistics row and stops before it reads the
    chunks (the test locks their table); a DELETE of the collection meanwhile waits for it
    on the collection's row (the build locked it first, as writers do) rather than taking
    that row and then deadlocking with the build, which checks the statistics row's foreign
    key when it updates the row again. Then the delete takes every row of the collection."""
    stopper = await db.engine.connect()
    try:
        async with keyword_build_waiting(client, db, "gone"):
            # Not tests.support.db.scalar: it ends the transaction that holds the build.
            partition = await db.scalar(text("SELECT chunk_partition_name('gone')"))
            await stopper.execute(text(f"LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE"))
        async with db.engine.connect() as observer:
            await wait_until(
                observer, LOCK_WAITS, "the build stopped", pattern="%keyword_index_build%"
            )
            deleting = asyncio.create_task(client.delete("/api/collections/gone"))
            await wait_until(
                observer,
                f"SELECT ({LOCK_WAITS}) = 2",
                "the delete waiting for the build",
                pattern="%",
            )
            await observer.rollback()
        await stopper.rollback()
        deleted = await deleting
    finally:
        await stopper.close()

    assert deleted.status_code == 204, deleted.text
    assert await scalar(db, "SELECT count(*) FROM keyword_terms") == 0
    assert await settled_violations(db, deleted_collections=["gone"]) == {}


async def test_a_large_first_fill_answers_with_its_keyword_index_built(
    indexing_client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """Past RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS the first fill builds its HNSW index
    and its postings before it commits: the answer finds both there."""
    stored = await stored_in(indexing_client, "large", long_text())

    assert stored["status"] == "completed"
    assert await scalar(db, KEYWORDS_DEFERRED, id="large") is False
    assert await scalar(db, COLLECTION_POSTINGS, id="large") > 0
    assert await scalar(db, POSTINGS_TABLE, id="large") == "key 1, index 1"
    assert await scalar(db, VECTOR_INDEXES, id="large") == 1
    assert await violations(db) == {}


async def leave_keywords_deferred(db: AsyncConnection, collection: str) -> None:
    """What a process killed between committing a first fill and building its keyword
    index leaves: the chunks, and a deferred index holding none of them."""
    await db.execute(
        text(
            "DELETE FROM keyword_postings WHERE chunk_id IN "
            "(SELECT id FROM chunks WHERE collection_id = :id)"
        ),
        {"id": collection},
    )
    await db.execute(
        text("DELETE FROM keyword_terms WHERE collection_id = :id"), {"id": collection}
    )
    await db.execute(
        text(
            "UPDATE keyword_collections SET deferred = true, chunk_count = 0, total_length = 0 "
            "WHERE collection_id = :id"
        ),
        {"id": collection},
    )
    await db.commit()


async def test_a_keyword_index_left_deferred_by_a_dead_process_is_built_by_the_sweep_or_next_write(
    client: httpx.AsyncClient, db: AsyncConnection, settings: Settings
) -> None:
    for collection in ("swept", "written"):
        await stored_in(client, collection, KEYWORD_TEXTS["engines.txt"])
        await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the build", id=collection)
    expected = await keyword_scores(client, "swept", "keyword")
    await leave_keywords_deferred(db, "swept")
    left = await scalar(db, KEYWORDS_DEFERRED, id="swept")
    meanwhile = await keyword_scores(client, "swept", "keyword")

    runtime = await Runtime.open(settings)
    try:
        await runtime.jobs.sweep()
    finally:
        await runtime.close()
    swept = await scalar(db, KEYWORDS_DEFERRED, id="swept")
    await leave_keywords_deferred(db, "written")
    again = await upload(
        client, KEYWORD_TEXTS["boats.txt"], "b.txt", route="/api/collections/written/documents"
    )

    assert (left, swept) == (True, False)
    assert expected and same_scores(meanwhile, expected)
    assert same_scores(await keyword_scores(client, "swept", "keyword"), expected)
    assert again.status_code == 201, again.text
    await wait_until(
        db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the next write's build", id="written"
    )
    assert [name for name, _ in await keyword_scores(client, "written", "keyword")] == [
        "a.txt",
        "b.txt",
    ]
    assert await settled_violations(db) == {}


async def drop_vector_index(db: AsyncConnection, collection: str) -> None:
    partition = await scalar(db, "SELECT chunk_partition_name(:id)", id=collection)
    await db.execute(text(f"DROP INDEX {partition}_embedding_hnsw"))
    await db.commit()


async def test_an_index_left_unbuilt_by_a_dead_process_is_built_by_the_sweep_or_next_write(
    client: httpx.AsyncClient, db: AsyncConnection, settings: Settings
) -> None:
    """A process killed between committing a collection's first chunks and building their
    index leaves a partition without one (the test drops it): a worker's sweep builds it,
    and so does the next write into the collection."""
    for collection in ("swept", "written"):
        await stored_in(client, collection, long_text())
        await indexed(db, collection)
    await drop_vector_index(db, "swept")
    unbuilt = await scalar(db, VECTOR_INDEXES, id="swept")

    runtime = await Runtime.open(settings)
    try:
        await runtime.jobs.sweep()
    finally:
        await runtime.close()
    swept = await scalar(db, VECTOR_INDEXES, id="swept")
    await drop_vector_index(db, "written")
    again = await upload(client, long_text(3), "b.txt", route="/api/collections/written/documents")

    assert (unbuilt, swept) == (0, 1)
    assert again.status_code == 201, again.text
    await indexed(db, "written")
    assert len(await search(client, "written", "vector")) == 3
    assert await settled_violations(db) == {}


async def test_ids_with_colons_dots_and_128_characters_get_partitions_of_their_own(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """PostgreSQL names and quotes each partition itself (the migration's test covers ids
    with quotes, which the API refuses)."""
    ids = ["team:alpha", "v1.2-beta_3", "A" * 128]
    for collection in ids:
        made = await client.post("/api/collections", json={"id": collection, "name": "x"})
        assert made.status_code == 201, made.text
        stored = await upload(
            client, long_text(), "a.txt", route=f"/api/collections/{collection}/documents"
        )
        assert stored.status_code == 201, stored.text

    partitions = await scalar(
        db, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'chunks'::regclass"
    )
    assert partitions == len(ids)
    for collection in ids:
        assert len(await search(client, collection, "vector")) == 3
    assert await settled_violations(db) == {}


async def test_a_deleted_collections_partition_is_dropped_by_the_workers_sweep(
    client: httpx.AsyncClient, db: AsyncConnection, settings: Settings
) -> None:
    """The delete leaves an empty partition (its rows went by cascade); the sweep detaches
    it concurrently and drops it, and a collection made again with that id gets a new one."""
    for collection in ("gone", "kept"):
        await stored_in(client, collection, long_text())
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="gone")
    gone = await scalar(db, "SELECT chunk_partition_name('gone')")
    gone_postings = await scalar(db, POSTINGS_TABLE_NAME, id="gone")
    deleted = await client.delete("/api/collections/gone")
    left_by_the_delete = await scalar(db, "SELECT to_regclass(:name)::text", name=gone)
    postings_left = await scalar(db, "SELECT to_regclass(:name)::text", name=gone_postings)

    runtime = await Runtime.open(settings)
    try:
        await runtime.jobs.sweep()
        after_sweep = await scalar(db, "SELECT to_regclass(:name)::text", name=gone)
        postings_after_sweep = await scalar(
            db, "SELECT to_regclass(:name)::text", name=gone_postings
        )
        dropped_again = await drop_orphaned_partitions(runtime.database.engine)
    finally:
        await runtime.close()
    kept_results = await search(client, "kept", "vector")
    await client.post("/api/collections", json={"id": "gone", "name": "again"})
    again = await upload(client, long_text(), "b.txt", route="/api/collections/gone/documents")
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="gone")
    postings_again = await scalar(db, POSTINGS_TABLE_NAME, id="gone")

    assert deleted.status_code == 204
    assert left_by_the_delete == gone
    assert postings_left == gone_postings
    assert after_sweep is None
    assert postings_after_sweep is None
    assert dropped_again == []
    assert len(kept_results) == 3
    assert again.status_code == 201, again.text
    assert len(await search(client, "gone", "vector")) == 3
    # Made again, the collection's postings have a new key and table (migration 0017).
    assert postings_again is not None and postings_again != gone_postings
    assert len(await search(client, "gone", "keyword")) == 3
    await indexed(db, "gone")
    assert await settled_violations(db) == {}


async def test_a_detach_cut_short_answers_503_until_the_sweep_finishes_it(
    client: httpx.AsyncClient, db: AsyncConnection, settings: Settings
) -> None:
    """A sweep killed in the middle of DETACH ... CONCURRENTLY leaves the partition
    'detach pending'. An upload into a collection made again under that id is then
    answered 503 with the reason, not 500, and the next sweep finishes the detach."""
    await client.post("/api/collections", json={"id": "gone", "name": "gone"})
    first = await upload(client, long_text(), "a.txt", route="/api/collections/gone/documents")
    assert first.status_code == 201, first.text
    await wait_until(db, f"SELECT NOT ({KEYWORDS_DEFERRED})", "the keyword build", id="gone")
    partition = await scalar(db, "SELECT chunk_partition_name('gone')")
    gone_postings = await scalar(db, POSTINGS_TABLE_NAME, id="gone")
    assert (await client.delete("/api/collections/gone")).status_code == 204
    # A reader holds the partition, so the detach waits in its second phase; then it is
    # cancelled there, as if its process had died.
    await db.execute(text("SELECT count(*) FROM chunks WHERE collection_id = 'gone'"))
    detacher = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with detacher.connect() as connection:
        pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        detaching = asyncio.create_task(
            connection.execute(
                text(f"ALTER TABLE chunks DETACH PARTITION {partition} CONCURRENTLY")
            )
        )
        async with db.engine.connect() as observer:
            await wait_until(
                observer,
                "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass(:p)",
                "the detach in its second phase",
                p=partition,
            )
            await observer.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError):
            await detaching
    await db.rollback()

    await client.post("/api/collections", json={"id": "gone", "name": "again"})
    refused = await upload(client, long_text(), "b.txt", route="/api/collections/gone/documents")
    runtime = await Runtime.open(settings)
    try:
        dropped = await drop_orphaned_partitions(runtime.database.engine)
    finally:
        await runtime.close()
    accepted = await upload(client, long_text(), "b.txt", route="/api/collections/gone/documents")

    assert refused.status_code == 503, refused.text
    assert "still being dropped" in refused.json()["detail"]
    # Its postings' table too: their key is gone, and the collection made again has another.
    assert dropped == [partition, gone_postings]
    assert accepted.status_code == 201, accepted.text
    assert len(await search(client, "gone", "vector")) == 3
    assert await settled_violations(db) == {}
