"""Issue 17's bulk path: a new collection's first large fill staged outside `chunks`, then
published in the upload's commit.

A first fill through `chunks` (app/document/partitions.py) writes its rows on one
connection while the table's B-tree and GIN indexes are kept up to date, then builds the
HNSW graph and the BM25 postings. When an upload brings at least `bulk_load_min_chunks`
chunks to a collection that has no table of chunks yet, its chunks are staged instead,
before the commit, in tables no search and no writer sees (app/document/staging.py):

1. the staged table is filled from the processed-document cache by two connections at
   once, half of the chunks each, with no index to keep up;
2. then, at once, on two connections: its HNSW index on one; its BM25 words and postings
   (`keyword_index_stage`, migration 0018), then its other indexes (those every partition
   of `chunks` has, which the attach adopts), on the other;
3. the upload's commit publishes them: the table renamed to the collection's partition and
   attached, its words, statistics and postings made the collection's. A search sees the
   document, fully indexed, from that commit on, and nothing of it before, as with any
   upload.

The commit writes through `chunks` instead (the staging is dropped) when the collection's
table was made meanwhile (another upload's first fill), when the document is not the one
the chunks were staged for, or when the attach, which waits for every transaction writing
`documents` or `collections` (its foreign keys), keeps timing out.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.database import Database
from app.db.locks import session_advisory_lock
from app.document.partitions import ChunkPartitionRepository
from app.document.repository import CachedChunks, ChunkRepository
from app.document.staging import (
    StagedKeywords,
    StagedTables,
    StagingRepository,
    drop_staged_tables,
    staging_lock_key,
)

logger = logging.getLogger(__name__)

# How long a publishing commit waits for the writers of `documents` and `collections` before
# it lets them go and tries again, and how many times it tries.
ATTACH_LOCK_TIMEOUT_MS = 500
PUBLISH_ATTEMPTS = 10


class StagingUnusable(Exception):
    """The staged chunks cannot be published; the commit writes through `chunks` instead."""


@dataclass(frozen=True)
class StagedFirstFill:
    """A collection's first chunks, staged and indexed for one document, not yet published."""

    collection_id: str
    document_id: uuid.UUID
    tables: StagedTables
    keywords: StagedKeywords

    @property
    def chunk_count(self) -> int:
        return self.keywords.chunk_count


class BulkLoads:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def large_enough(self, chunk_count: int) -> bool:
        """Whether `chunk_count` chunks are enough for a bulk load (into a new collection)."""
        minimum = self.settings.bulk_load_min_chunks
        return bool(minimum) and chunk_count >= minimum

    async def applies(self, collection_id: str, chunk_count: int) -> bool:
        """Whether a write of `chunk_count` chunks into the collection is staged: enough of
        them, and no table of chunks for the collection yet."""
        if not self.large_enough(chunk_count):
            return False
        async with self.database.session() as session:
            partition = await ChunkPartitionRepository(session).name(collection_id)
            return not await StagingRepository(session).partition_exists(partition)

    @asynccontextmanager
    async def staged(
        self, source: CachedChunks, chunk_count: int
    ) -> AsyncIterator[StagedFirstFill]:
        """The cache entry's `chunk_count` chunks staged for the document; whatever is left
        of them (all of it, unless they were published) is dropped on the way out. The
        staging's lock is held meanwhile, so that the sweep leaves its tables alone."""
        tables = StagedTables(uuid.uuid4().hex)
        async with self.database.engine.connect() as holder:
            await holder.execution_options(isolation_level="AUTOCOMMIT")
            async with session_advisory_lock(holder, staging_lock_key(tables.staging_id)):
                try:
                    started = time.perf_counter()
                    keywords = await self._stage(tables, source, chunk_count)
                    logger.info(
                        "staged %d chunks for collection %s in %.2f s",
                        keywords.chunk_count,
                        source.collection_id,
                        time.perf_counter() - started,
                    )
                    yield StagedFirstFill(
                        source.collection_id, source.document_id, tables, keywords
                    )
                finally:
                    await drop_staged_tables(self.database.engine, tables)

    async def publish(
        self, session: AsyncSession, staged: StagedFirstFill, document_id: uuid.UUID
    ) -> None:
        """Make the staged chunks the collection's, in the caller's transaction, which holds
        the collection's partition lock (`claim_first_fill`), so no one makes its table
        meanwhile; StagingUnusable if they cannot be."""
        if document_id != staged.document_id:
            raise StagingUnusable("the document is not the one the chunks were staged for")
        partitions = ChunkPartitionRepository(session)
        staging = StagingRepository(session)
        partition = await partitions.name(staged.collection_id)
        if await staging.partition_exists(partition):
            raise StagingUnusable("the collection's table of chunks was made meanwhile")
        await staging.publish(
            staged.tables,
            staged.collection_id,
            partition,
            staged.keywords,
            ATTACH_LOCK_TIMEOUT_MS,
        )

    async def _stage(
        self, tables: StagedTables, source: CachedChunks, chunk_count: int
    ) -> StagedKeywords:
        async with self.database.session() as session:
            await StagingRepository(session).create_chunks_table(tables, source.collection_id)

        async def fill(positions: range) -> None:
            async with self.database.session() as session:
                await ChunkRepository(session).copy_from_cache(
                    source.part(positions), in_graph=True, table=tables.chunks
                )

        half = (chunk_count + 1) // 2
        async with asyncio.TaskGroup() as filling:
            filling.create_task(fill(range(half)))
            filling.create_task(fill(range(half, source.positions.stop)))

        async def vector_index() -> None:
            async with self.database.session() as session:
                await StagingRepository(session).build_vector_index(
                    tables, self.settings.index_build_memory_mb
                )

        # One after the other on one connection, beside the HNSW build (which has
        # PostgreSQL's parallel workers): on two cores, three builds at once took 2.54 s
        # in all and two 2.15 s (10,000 chunks at 1,536-d, medians of 6 alternating rounds).
        async def keywords_then_other_indexes() -> StagedKeywords:
            async with self.database.session() as session:
                staging = StagingRepository(session)
                keywords = await staging.stage_keywords(tables)
                await staging.build_other_indexes(tables)
                return keywords

        async with asyncio.TaskGroup() as building:
            building.create_task(vector_index())
            staged_keywords = building.create_task(keywords_then_other_indexes())
        return staged_keywords.result()
