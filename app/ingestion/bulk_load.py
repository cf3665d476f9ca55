"""Issue 17's bulk path: a new collection's first large fill staged outside `chunks`, then
published in the upload's commit.

A first fill through `chunks` (app/document/partitions.py) writes its rows on one
connection while the table's B-tree and GIN indexes are kept up to date, then builds the
HNSW graph and the BM25 postings. When an upload brings at least `bulk_load_min_chunks`
chunks to a collection that has no table of chunks yet, its chunks are staged instead,
before the commit, in tables no search and no writer sees (app/document/staging.py):

1. the staged table is filled from the processed-document cache by two connections at
   once, half of the chunks each, with no index to keep up;
2. then, at once, on two connections: its HNSW index on one, its BM25 words and postings
   (`keyword_index_stage`, migrations 0018 and 0019) on the other; then each connection
   takes the next of the other indexes (those every partition of `chunks` has, which the
   attach adopts, and the postings' two) until none are left, and the constraints are made
   from their indexes last;
3. the upload's commit publishes them: the table renamed to the collection's partition and
   attached, its words, statistics and postings made the collection's. A search sees the
   document, fully indexed, from that commit on, and nothing of it before, as with any
   upload.

Step 1 begins while the content is still being embedded (`StagingAhead`): once the chunker
has made enough chunks for a bulk load, the staged table is made, and each part of the
content is copied into it from the cache as soon as it is stored there, so that the commit
starts from step 2. Content found complete in the cache is staged from step 1 at the commit.

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
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.database import Database
from app.db.locks import session_advisory_lock
from app.db.repository import at_most_parallel_maintenance_workers
from app.db.types import quantizes_vectors
from app.document.partitions import ChunkPartitionRepository
from app.document.repository import CachedChunks, ChunkRepository
from app.document.staging import (
    IndexBuild,
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
# Copies from the cache into a staging ahead of the commit at once, beside the stores.
FILLS_AT_ONCE = 2


def hnsw_workers_beside_postings(dimensions: int, cores: int) -> int | None:
    """At most how many parallel workers PostgreSQL gives a staging's HNSW build, which runs
    beside its BM25 postings; None: as many as PostgreSQL's own settings allow.

    A binary-quantized graph (from 1,024 dimensions) takes about as long to build as the
    postings: its workers only took CPU from them. On two cores the staging took 1.88 s
    with PostgreSQL's two workers and 1.57 s with none (4 MB, 10,886 chunks at 1,536-d,
    benchmark 1b, medians of 8 and 6 alternating runs, session 23), so it gets the cores
    beyond the two connections' only. A full-precision graph is the longer build by far,
    and its workers shorten it: 2.17 s with them against 2.31 s without (the same text at
    384-d, medians of 6).
    """
    if not quantizes_vectors(dimensions):
        return None
    return max(0, cores - 2)


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
        return self.large_enough(chunk_count) and await self.has_no_table(collection_id)

    async def has_no_table(self, collection_id: str) -> bool:
        """Whether the collection has no table of chunks yet."""
        async with self.database.session() as session:
            partition = await ChunkPartitionRepository(session).name(collection_id)
            return not await StagingRepository(session).partition_exists(partition)

    @asynccontextmanager
    async def staged(
        self, source: CachedChunks, chunk_count: int, ahead: "StagingAhead | None" = None
    ) -> AsyncIterator[StagedFirstFill]:
        """The cache entry's `chunk_count` chunks staged for the document, starting from
        those `ahead` filled while they were embedded, if it could; whatever is left of
        them (all of it, unless they were published) is dropped on the way out. The
        staging's lock is held meanwhile, so that the sweep leaves its tables alone."""
        started = time.perf_counter()
        async with AsyncExitStack() as stack:
            filled_ahead = await ahead.filled(source, chunk_count) if ahead else None
            if filled_ahead is not None:
                tables = filled_ahead  # its lock is held by `ahead` until it closes
            else:
                tables = StagedTables(uuid.uuid4().hex)
                await stack.enter_async_context(self.locked(tables))
            stack.push_async_callback(drop_staged_tables, self.database.engine, tables)
            if filled_ahead is None:
                await self._create_and_fill(tables, source, chunk_count)
            keywords = await self._build_indexes(tables)
            logger.info(
                "staged %d chunks for collection %s in %.2f s%s",
                keywords.chunk_count,
                source.collection_id,
                time.perf_counter() - started,
                " (filled while they were embedded)" if filled_ahead else "",
            )
            yield StagedFirstFill(source.collection_id, source.document_id, tables, keywords)

    @asynccontextmanager
    async def locked(self, tables: StagedTables) -> AsyncIterator[None]:
        """The staging's lock, held on a connection of its own (across transactions)."""
        async with self.database.engine.connect() as holder:
            await holder.execution_options(isolation_level="AUTOCOMMIT")
            async with session_advisory_lock(holder, staging_lock_key(tables.staging_id)):
                yield

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

    async def create_table(self, tables: StagedTables, collection_id: str) -> None:
        async with self.database.session() as session:
            await StagingRepository(session).create_chunks_table(tables, collection_id)

    async def fill(self, tables: StagedTables, source: CachedChunks) -> None:
        """Copy the source's chunks (their positions) from the cache into the staging."""
        async with self.database.session() as session:
            await ChunkRepository(session).copy_from_cache(
                source, in_graph=True, table=tables.chunks
            )

    async def _create_and_fill(
        self, tables: StagedTables, source: CachedChunks, chunk_count: int
    ) -> None:
        await self.create_table(tables, source.collection_id)
        half = (chunk_count + 1) // 2
        async with asyncio.TaskGroup() as filling:
            filling.create_task(self.fill(tables, source.part(range(half))))
            filling.create_task(self.fill(tables, source.part(range(half, chunk_count))))

    async def _build_indexes(self, tables: StagedTables) -> StagedKeywords:
        """Every index of the staged tables, on two connections: the HNSW index on one, the
        BM25 words and postings on the other, then each takes the next of the other
        indexes (the chunks' ones first, then the postings' two) until none are left; the
        constraints last."""
        builds: asyncio.Queue[IndexBuild | None] = asyncio.Queue()
        async with self.database.session() as session:
            for build in await StagingRepository(session).chunk_index_builds(tables):
                builds.put_nowait(build)
        built: list[IndexBuild] = []
        hnsw_workers = hnsw_workers_beside_postings(
            self.settings.embedding_dimensions, self.settings.database_cpu_count
        )

        async def take_builds() -> None:
            async with self.database.session() as session:
                staging = StagingRepository(session)
                while (build := await builds.get()) is not None:
                    await staging.build_index(build)
                    built.append(build)
            builds.put_nowait(None)  # for the other connection

        async def vector_index() -> None:
            async with self.database.session() as session:
                if hnsw_workers is not None:
                    await at_most_parallel_maintenance_workers(session, hnsw_workers)
                await StagingRepository(session).build_vector_index(
                    tables, self.settings.index_build_memory_mb
                )
            await take_builds()

        # Committed before their indexes are built, so that the other connection sees them.
        async def keywords() -> StagedKeywords:
            async with self.database.session() as session:
                staging = StagingRepository(session)
                staged_keywords = await staging.stage_keywords(tables)
                postings_builds = await staging.postings_index_builds(tables)
            for build in postings_builds:
                builds.put_nowait(build)
            builds.put_nowait(None)
            await take_builds()
            return staged_keywords

        async with asyncio.TaskGroup() as building:
            building.create_task(vector_index())
            staged_keywords = building.create_task(keywords())
        async with self.database.session() as session:
            await StagingRepository(session).constrain(built)
        return staged_keywords.result()


@dataclass
class _Fill:
    """One builder's staging ahead: its table (once made), and the parts copied into it."""

    builder: uuid.UUID
    tables: StagedTables
    made: "asyncio.Task[bool] | None" = None
    stored: list[range] = field(default_factory=list)
    copied: list[range] = field(default_factory=list)
    copies: set["asyncio.Task[None]"] = field(default_factory=set)
    locked: bool = False  # the staging's lock is held (until StagingAhead closes)
    broken: bool = False

    def covers(self, chunk_count: int) -> bool:
        """Whether positions 0 to chunk_count - 1 were all copied, once each."""
        covered = 0
        for positions in sorted(self.copied, key=lambda positions: positions.start):
            if positions.start != covered:
                return False
            covered = positions.stop
        return covered == chunk_count


class StagingAhead:
    """A bulk load's staged table, made and filled while its content is still being
    embedded: once the chunker has made enough chunks for a bulk load into a collection
    with no table yet, the table is made, and each part of the content stored in the cache
    is copied into it from there. At the commit, `BulkLoads.staged` starts from it.

    Until the content's cache entry is complete, the staging is named by the entry's
    builder, and the sweep spares it while that builder's lease runs; the staging's lock is
    taken before the entry is completed, and held until this closes. Anything that goes
    wrong (a copy fails, the sweep dropped the table of a builder that lost its lease, the
    entry was taken over) only means that the commit stages everything itself, as it
    would have.
    """

    def __init__(self, bulk_loads: BulkLoads, source: CachedChunks) -> None:
        self._bulk_loads = bulk_loads
        self.source = source
        self._fill: _Fill | None = None
        self._dropping: set[asyncio.Task[None]] = set()
        self._copying = asyncio.Semaphore(FILLS_AT_ONCE)
        self._locks = AsyncExitStack()

    def stored(self, builder: uuid.UUID, positions: range, made: int) -> None:
        fill = self._fill
        if fill is None or fill.builder != builder:
            if fill is not None:  # the entry was taken over, and is built again
                self._drop_later(fill)
            fill = self._fill = _Fill(builder, StagedTables(builder.hex))
        fill.stored.append(positions)
        if fill.made is not None:
            self._copy(fill, positions)
        elif self._bulk_loads.large_enough(made):
            fill.made = asyncio.create_task(self._make(fill))
            for earlier in fill.stored:
                self._copy(fill, earlier)

    async def before_complete(self, builder: uuid.UUID) -> None:
        """Take the staging's lock while the builder's lease still spares it."""
        fill = self._fill
        if fill is None or fill.builder != builder or fill.made is None or not await fill.made:
            return
        await self._locks.enter_async_context(self._bulk_loads.locked(fill.tables))
        fill.locked = True
        # Had the lease run out before the lock was taken, the sweep may have dropped it.
        async with self._bulk_loads.database.session() as session:
            if not await StagingRepository(session).partition_exists(fill.tables.chunks):
                fill.broken = True

    async def filled(self, source: CachedChunks, chunk_count: int) -> StagedTables | None:
        """The staged table with all `chunk_count` chunks of `source` in it, its lock held;
        None if this staging cannot give it (then the commit stages everything)."""
        fill = self._fill
        if fill is None or not fill.locked:
            return None
        await asyncio.gather(*fill.copies, return_exceptions=True)
        if fill.broken or source != self.source or not fill.covers(chunk_count):
            return None
        return fill.tables

    async def close(self) -> None:
        """Stop copying; drop whatever was not published, and let the lock go."""
        if self._fill is not None:
            await self._drop(self._fill)
        await asyncio.gather(*self._dropping, return_exceptions=True)
        await self._locks.aclose()

    async def _make(self, fill: _Fill) -> bool:
        try:
            if not await self._bulk_loads.has_no_table(self.source.collection_id):
                return False
            await self._bulk_loads.create_table(fill.tables, self.source.collection_id)
        except Exception:
            logger.warning("could not make a staged table ahead of the commit", exc_info=True)
            return False
        return True

    def _copy(self, fill: _Fill, positions: range) -> None:
        async def copy() -> None:
            assert fill.made is not None
            if not await fill.made:
                return
            try:
                async with self._copying:
                    await self._bulk_loads.fill(fill.tables, self.source.part(positions))
            except Exception:
                logger.warning(
                    "could not copy chunks %s into %s; the commit stages them all",
                    positions,
                    fill.tables.chunks,
                    exc_info=True,
                )
                fill.broken = True
            else:
                fill.copied.append(positions)

        task = asyncio.create_task(copy())
        fill.copies.add(task)
        task.add_done_callback(fill.copies.discard)

    def _drop_later(self, fill: _Fill) -> None:
        task = asyncio.create_task(self._drop(fill))
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)

    async def _drop(self, fill: _Fill) -> None:
        """Drop the fill's table (nothing, once it was published: it has another name)."""
        pending = [*fill.copies, *([fill.made] if fill.made is not None else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if fill.made is not None:
            try:
                await drop_staged_tables(self._bulk_loads.database.engine, fill.tables)
            except Exception:
                logger.warning("could not drop %s; the sweep will", fill.tables.chunks)
