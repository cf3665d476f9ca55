"""Each collection's chunks are a partition of `chunks`, indexed after its first fill.

The partition is made empty, with no HNSW index, in a short transaction of
its own (`create_if_missing`) before the writer's transaction. That writer
then sees no index (`claim_first_fill`), writes its chunks through `chunks`
without any graph to keep up to date and without BM25 postings
(`defer_keyword_index`, migration 0015), and builds the collection's HNSW
index (`build_vector_index`) and postings (`build_keyword_index`) over them:
pgvector builds a graph about 4x faster than it keeps one up to date. A
large first fill builds both in its own transaction, so a crash rolls the
rows and the indexes back together; a small one commits first and they are
built just after, at once (app/document/index_builds.py). Later writes go
through `chunks`, and their chunks join that partition's own graph just
after they commit.

Locks, in this order, so that no two transactions wait for each other:
- a writer that finds no index takes the collection's partition lock first,
  before it touches any document; a second first writer waits there and then
  finds the index;
- adding a write's pending chunks to the graph (`add_to_graph`) takes a lock of
  its own (`graph_lock_key`, one per lane) and waits for no row lock: the rows a
  writer or another lane holds are skipped;
- attaching a partition adds foreign keys, which takes SHARE ROW EXCLUSIVE on
  `documents` and `collections`: it waits for the writers in flight, so it
  runs in a transaction that holds nothing else.
"""

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.errors import ServiceUnavailable
from app.db.locks import advisory_lock, session_advisory_lock
from app.db.repository import execute_formatted
from app.db.types import HNSW_INDEX_PREDICATE, hnsw_index_column

logger = logging.getLogger(__name__)

# Partitions whose collection is gone (deleted: its rows went with it, by cascade), or
# whose detach was cut short. {live}: the names of the partitions in use.
_ORPHANED_PARTITIONS = """
    SELECT p.relname::text, i.inhdetachpending
    FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
    WHERE i.inhparent = '{parent}'::regclass
      -- Hashed once per call: every live name, not one lookup per partition. A detach
      -- cut short is finished whatever the collection: its rows went with the collection
      -- that was deleted.
      AND (i.inhdetachpending OR p.relname::text NOT IN ({live}))
    ORDER BY 1
"""


@dataclass(frozen=True)
class PartitionedTable:
    """A table with a partition per collection, and how the sweep finds the orphaned ones."""

    parent: str
    orphaned: str
    # Whether the partition's name comes back when a collection is made again with the
    # same id: then the sweep drops it under the collection's partition lock.
    reused_names: bool


# Each collection has a table of chunks, named by its id, and one of BM25 postings, named
# by its key in keyword_collections, which a collection made again never gets back
# (migration 0017).
PARTITIONED_TABLES = (
    PartitionedTable(
        "chunks",
        _ORPHANED_PARTITIONS.format(
            parent="chunks", live="SELECT chunk_partition_name(c.id) FROM collections c"
        ),
        reused_names=True,
    ),
    PartitionedTable(
        "keyword_postings",
        _ORPHANED_PARTITIONS.format(
            parent="keyword_postings",
            live="SELECT keyword_partition_name(k.postings_key) FROM keyword_collections k",
        ),
        reused_names=False,
    ),
)
# Whether the table {partition} (a regclass, NULL if missing) has a valid HNSW index.
VECTOR_INDEX_EXISTS = """EXISTS (
        SELECT 1 FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_am a ON a.oid = i.relam
        WHERE x.indrelid = {partition} AND a.amname = 'hnsw' AND x.indisvalid
    )"""
HAS_VECTOR_INDEX = "SELECT " + VECTOR_INDEX_EXISTS.format(partition="to_regclass(:name)")
# Collections whose partition holds chunks and has no valid HNSW index (HAS_VECTOR_INDEX).
_UNINDEXED_COLLECTIONS = """
    SELECT c.id FROM collections c
    CROSS JOIN LATERAL (SELECT to_regclass(chunk_partition_name(c.id)) AS partition) p
    WHERE p.partition IS NOT NULL
      AND EXISTS (SELECT 1 FROM chunks k WHERE k.collection_id = c.id)
      AND NOT {indexed}
    ORDER BY c.id
"""
UNINDEXED_COLLECTIONS = _UNINDEXED_COLLECTIONS.format(
    indexed=VECTOR_INDEX_EXISTS.format(partition="p.partition")
)
# Per collection: the chunks a vector search scans beside the HNSW graph (all of them
# while the graph is not built; a write's pending chunks after, migration 0014), and
# whether its BM25 postings are deferred (migration 0015).
_INDEXING = """
    SELECT c.id,
           CASE WHEN {indexed}
                THEN (SELECT count(*) FROM chunks k WHERE k.collection_id = c.id AND NOT k.in_graph)
                ELSE (SELECT count(*) FROM chunks k WHERE k.collection_id = c.id)
           END AS outside_graph,
           coalesce(s.deferred, false) AS keyword_deferred
    FROM unnest(CAST(:ids AS text[])) AS c(id)
    LEFT JOIN keyword_collections s ON s.collection_id = c.id
"""
INDEXING = _INDEXING.format(
    indexed=VECTOR_INDEX_EXISTS.format(partition="to_regclass(chunk_partition_name(c.id))")
)


@dataclass(frozen=True)
class Indexing:
    """How far a collection's indexes have caught up with its chunks (see INDEXING)."""

    chunks_outside_graph: int
    keyword_index_deferred: bool

    @property
    def complete(self) -> bool:
        return not self.chunks_outside_graph and not self.keyword_index_deferred


# A table for one collection's chunks, to attach to `chunks`, for format(): %I its name, %L
# the collection's id. The CHECK spares the attach its scan of the table. Rows stay inline,
# vectors included (migration 0003: a partitioned table holds no storage parameters, so
# each partition gets them).
CHUNKS_TABLE = (
    "CREATE TABLE %I (LIKE chunks INCLUDING DEFAULTS INCLUDING GENERATED, "
    "CHECK (collection_id = %L)) WITH (toast_tuple_target = 8160)"
)


def vector_index_name(partition: str) -> str:
    return f"{partition}_embedding_hnsw"


async def build_hnsw_index(
    session: AsyncSession, table: str, index_name: str, memory_mb: int
) -> None:
    """The HNSW index of a table of chunks (a collection's partition, or a staged table),
    with `memory_mb` of maintenance_work_mem for this transaction."""
    dimensions = await session.scalar(
        text(
            "SELECT atttypmod FROM pg_attribute "
            "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
        )
    )
    await session.execute(
        text("SELECT set_config('maintenance_work_mem', :memory, true)"),
        {"memory": f"{memory_mb}MB"},
    )
    await execute_formatted(
        session,
        f"CREATE INDEX %I ON %I USING hnsw ({hnsw_index_column(int(dimensions))}) "
        f"WHERE {HNSW_INDEX_PREDICATE}",
        index_name,
        table,
    )


def lock_key(partition: str) -> str:
    """The advisory lock of a partition's making, first fill and dropping."""
    return f"chunks of {partition}"


def keyword_lock_key(partition: str) -> str:
    """The advisory lock of a build of the collection's deferred keyword index."""
    return f"keywords of {partition}"


def graph_lock_key(partition: str, lane: int) -> str:
    """The advisory lock of one lane of additions to a partition's HNSW graph."""
    return f"graph of {partition} lane {lane}"


class ChunkPartitionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_if_missing(self, collection_id: str) -> None:
        """The collection's partition, empty and not yet vector-indexed, if it is missing.
        Run it in a transaction of its own (see the module's locks)."""
        name = await self.name(collection_id)
        await advisory_lock(self.session, lock_key(name))
        detaching = await self._scalar(
            "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass(:name)",
            name=name,
        )
        if detaching:
            # A sweep's DETACH ... CONCURRENTLY was cut short; the next sweep finishes it.
            raise ServiceUnavailable(
                f"the chunks table of an earlier collection {collection_id!r} is still being "
                "dropped; retry in a minute"
            )
        if await self._scalar("SELECT to_regclass(:name) IS NOT NULL", name=name):
            return
        # PostgreSQL quotes the name and the id (free text) itself.
        await execute_formatted(self.session, CHUNKS_TABLE, name, collection_id)
        await execute_formatted(
            self.session,
            "ALTER TABLE chunks ATTACH PARTITION %I FOR VALUES IN (%L)",
            name,
            collection_id,
        )

    async def claim_first_fill(self, collection_id: str) -> bool:
        """Whether the partition has no HNSW index yet: this transaction then holds the
        collection's partition lock, writes its chunks, and calls build_vector_index. False
        when the index exists (chunks written keep it up to date). Call it before the
        transaction touches any document."""
        name = await self.name(collection_id)
        if await self._scalar(HAS_VECTOR_INDEX, name=name):
            return False
        await advisory_lock(self.session, lock_key(name))
        return not await self._scalar(HAS_VECTOR_INDEX, name=name)

    async def build_vector_index(
        self, collection_id: str, memory_mb: int = 64, chunks: int | None = None
    ) -> None:
        """The partition's HNSW index, built over the chunks it holds (`chunks`, if the
        caller counted them), with `memory_mb` of maintenance_work_mem for this
        transaction; none while it holds no chunks (the first chunks written will build it)."""
        if chunks is None:
            chunks = await self.chunk_count(collection_id)
        if not chunks:
            return
        name = await self.name(collection_id)
        started = time.perf_counter()
        await build_hnsw_index(self.session, name, vector_index_name(name), memory_mb)
        logger.info(
            "built the HNSW index of collection %s over its first %d chunks in %.2f s "
            "(maintenance_work_mem %d MB)",
            collection_id,
            chunks,
            time.perf_counter() - started,
            memory_mb,
        )

    async def defer_keyword_index(self, collection_id: str) -> bool:
        """Leave the BM25 postings of the chunks this first fill writes to
        `build_keyword_index` (migration 0015), unless the collection has indexed chunks
        already (a partition whose HNSW build never ran after older code wrote it); whether
        they are left to it. The statistics row stays locked until the transaction ends."""
        deferred = await self._scalar(
            """
            INSERT INTO keyword_collections AS k (collection_id, deferred) VALUES (:id, true)
            ON CONFLICT (collection_id) DO UPDATE SET deferred = true
            WHERE k.chunk_count = 0
            RETURNING deferred
            """,
            id=collection_id,
        )
        return bool(deferred)

    async def indexing(self, collection_ids: list[str]) -> dict[str, Indexing]:
        """Each collection's Indexing (collections without chunks have nothing to catch up)."""
        rows = await self.session.execute(text(INDEXING), {"ids": collection_ids})
        return {
            collection_id: Indexing(int(outside), bool(deferred))
            for collection_id, outside, deferred in rows.all()
        }

    async def keyword_index_deferred(self, collection_id: str) -> bool:
        return bool(
            await self._scalar(
                "SELECT deferred FROM keyword_collections WHERE collection_id = :id",
                id=collection_id,
            )
        )

    async def build_keyword_index(self, collection_id: str) -> bool:
        """The collection's deferred BM25 postings, statistics and words, from every chunk it
        holds (the SQL function of migration 0015); whether they were deferred. Writers of
        the collection wait for it on its statistics row, and it for them."""
        await advisory_lock(self.session, keyword_lock_key(await self.name(collection_id)))
        started = time.perf_counter()
        built = bool(await self._scalar("SELECT keyword_index_build(:id)", id=collection_id))
        if built:
            logger.info(
                "built the keyword index of collection %s in %.2f s",
                collection_id,
                time.perf_counter() - started,
            )
        return built

    async def collections_with_deferred_keywords(self) -> list[str]:
        rows = await self.session.scalars(
            text("SELECT collection_id FROM keyword_collections WHERE deferred ORDER BY 1")
        )
        return list(rows)

    async def build_if_missing(self, collection_id: str, memory_mb: int) -> bool:
        """Build the partition's HNSW index unless it exists (under the partition's lock);
        whether this built it. Run it in a transaction of its own."""
        if not await self.claim_first_fill(collection_id):
            return False
        await self.build_vector_index(collection_id, memory_mb)
        return True

    async def unindexed_collections(self) -> list[str]:
        """Collections whose partition holds chunks but has no valid HNSW index yet."""
        rows = await self.session.scalars(text(UNINDEXED_COLLECTIONS))
        return list(rows)

    async def graph_pending_count(self, collection_id: str) -> int:
        """The collection's chunks not yet in its HNSW graph (app/document/index_builds.py)."""
        return int(
            await self._scalar(
                "SELECT count(*) FROM chunks WHERE collection_id = :id AND NOT in_graph",
                id=collection_id,
            )
        )

    async def add_to_graph(self, collection_id: str, batch: int, lane: int) -> int:
        """Hand up to `batch` of the collection's pending chunks to its HNSW graph (pgvector
        adds each updated row to the partial index); how many. Rows another transaction has
        locked (a replace, a delete, the other lane) are skipped, never waited for, so this
        never deadlocks with a writer; a later call takes them if they are still there. One
        addition per lane of a collection's graph at a time, whatever the process
        (graph_lock_key): pgvector inserts into one graph from several transactions, so each
        lane is a core."""
        name = await self.name(collection_id)
        await advisory_lock(self.session, graph_lock_key(name, lane))
        result = await self.session.execute(
            text(
                """
                UPDATE chunks SET in_graph = true
                WHERE collection_id = :id AND id IN (
                    SELECT id FROM chunks WHERE collection_id = :id AND NOT in_graph
                    LIMIT :batch FOR UPDATE SKIP LOCKED
                )
                """
            ),
            {"id": collection_id, "batch": batch},
        )
        return int(getattr(result, "rowcount", 0))

    async def collections_with_pending_chunks(self) -> list[str]:
        """Collections holding chunks not yet in their HNSW graph."""
        rows = await self.session.scalars(
            text("SELECT DISTINCT collection_id FROM chunks WHERE NOT in_graph ORDER BY 1")
        )
        return list(rows)

    async def chunk_count(self, collection_id: str) -> int:
        return int(
            await self._scalar(
                "SELECT count(*) FROM chunks WHERE collection_id = :id", id=collection_id
            )
        )

    async def name(self, collection_id: str) -> str:
        return str(await self._scalar("SELECT chunk_partition_name(:id)", id=collection_id))

    async def _scalar(self, sql: str, **parameters: object) -> Any:
        return await self.session.scalar(text(sql), parameters)


async def drop_orphaned_partitions(engine: AsyncEngine) -> list[str]:
    """Drop the partitions of deleted collections, chunks' and postings'; returns their names.

    DETACH ... CONCURRENTLY waits for the searches in flight instead of stopping every
    search of every collection, as a DROP of an attached partition would (it locks all of
    the partitioned table). It cannot run in a transaction. A table of chunks is named by
    its collection's id, which may be made again meanwhile: this holds the collection's
    partition lock for the session, and looks again, under it, that it is still orphaned.
    A detach cut short (the process died) is finished by the next call.
    """
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        dropped = []
        for table in PARTITIONED_TABLES:
            for name, detach_pending in (await connection.execute(text(table.orphaned))).all():
                guard = (
                    session_advisory_lock(connection, lock_key(name))
                    if table.reused_names
                    else contextlib.nullcontext()
                )
                async with guard:
                    if table.reused_names and name not in {
                        row[0] for row in await connection.execute(text(table.orphaned))
                    }:
                        continue  # its collection was made again meanwhile
                    # name is a partition name function's prefix and hex digits or a key.
                    how = "FINALIZE" if detach_pending else "CONCURRENTLY"
                    await connection.execute(
                        text(f"ALTER TABLE {table.parent} DETACH PARTITION {name} {how}")
                    )
                    await connection.execute(text(f"DROP TABLE {name}"))
                    dropped.append(name)
        if dropped:
            logger.info("dropped the partitions of deleted collections: %s", dropped)
        return dropped
