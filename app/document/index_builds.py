"""A collection's HNSW graph is kept up to date after a write answers, not inside it.

Two kinds of work, both run by the process that wrote the chunks, in
transactions of their own, right after its write committed:

- **Builds.** Building the graph over a collection's first chunks
  (partitions.py) took 0.3 to 0.45 s of the 2.7 s of one upload of 2,730
  chunks at 1,536 dimensions (benchmark 1b). Up to
  `RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS` (10,000) first chunks are
  committed without it, so the upload answers first, and the index is built
  right after. Writes into the collection wait for the build under the
  partition's lock, as they wait for a first fill.
- **Keyword postings.** The BM25 postings of those first chunks (migration
  0015) took 0.7 s of the same upload. They are built right after it too,
  in a transaction of their own beside the HNSW build, so the two take a
  core each. Meanwhile a keyword search scores the collection's chunks from
  their words directly (app/search/bm25.py).
- **Additions.** Chunks written into a collection that has its index are
  stored with `in_graph = false` (migration 0014), outside the partial HNSW
  index: keeping a graph of 100,000 chunks up to date was 2.7 s of the 3.9 s
  of writing 2,730 chunks into it. They join it here, `ADD_BATCH` at a time
  (`ChunkPartitionRepository.add_to_graph`), in up to `GRAPH_LANES`
  transactions at once. While a collection holds that
  bound's worth of pending chunks, writes keep its graph up to date
  themselves, as before, so searches never scan more than about that many.

What a search sees meanwhile: every chunk. Those outside the graph are found
by an exact scan beside it (app/search/repository.py): about 77 ms for a
whole collection of 10,000 chunks at 1,536 dimensions, against 4 ms through
the index, and less for the few chunks of a pending write. Keyword scores
are the same BM25 before and after the postings are built.

If the process dies first, nothing is lost: the next write into the
collection, or a worker's sweep (`catch_up`), builds the index and the
postings and adds what is pending.
"""

import asyncio
import logging
import math
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from app.db.database import Database
from app.db.repository import without_parallel_workers
from app.document.partitions import ChunkPartitionRepository

logger = logging.getLogger(__name__)

# The additions asked for by the upload this task is processing (see `foreground`).
_additions_after_upload: ContextVar[list[tuple[str, int]] | None] = ContextVar(
    "additions_after_upload", default=None
)


class VectorIndexBuilds:
    """The deferred index builds and graph additions of this process, each a task until it
    ends."""

    # Builds and additions at once: each takes a core and a pooled connection while it runs,
    # and many collections at once must not take every connection that requests need.
    CONCURRENT_BUILDS = 2
    # Chunks handed to a graph per transaction: row locks held for about a second at
    # 1,536 dimensions, so a replace or delete of those chunks waits no longer than that.
    ADD_BATCH = 1000
    # Additions to one collection's graph at once, each in its own transaction on its own
    # core: pgvector inserts into one graph from several, and SKIP LOCKED gives each lane
    # rows of its own. A write of more than ADD_BATCH chunks uses them all, unless an
    # upload is in flight meanwhile (see `foreground`).
    GRAPH_LANES = 2

    def __init__(self, database: Database, memory_mb: int) -> None:
        self.database = database
        self.memory_mb = memory_mb
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.CONCURRENT_BUILDS)
        # The lanes with an addition running, per collection, and the collections written
        # again meanwhile.
        self._lanes: dict[str, set[int]] = {}
        self._add_again: set[str] = set()
        self._foreground = 0
        # Collections whose second lane stopped for an upload in flight.
        self._held_off: set[str] = set()
        # Collections whose keyword index this process is building.
        self._keyword_builds: set[str] = set()

    @contextmanager
    def foreground(self) -> Iterator[None]:
        """While an upload of this process is processed and written. Its own additions
        start when it ends, and a second lane of additions does not run while another is in
        flight (it resumes after): it took a core from it, whose answer came 1.3-1.4x later
        (benchmark 1b, two uploads at once into 100,000 chunks)."""
        asked: list[tuple[str, int]] = []
        token = _additions_after_upload.set(asked)
        self._foreground += 1
        try:
            yield
        finally:
            self._foreground -= 1
            _additions_after_upload.reset(token)
            for collection_id, written in asked:
                self.add_pending(collection_id, written)
            if not self._foreground:
                self._resume_held_off_lanes()

    def _resume_held_off_lanes(self) -> None:
        """The lanes that stopped for uploads in flight, where the first lane still adds."""
        held_off, self._held_off = self._held_off, set()
        for collection_id in held_off:
            busy = self._lanes.get(collection_id, set())
            if 0 in busy:
                self._start_lanes(collection_id, range(1, self.GRAPH_LANES))

    def start(self, collection_id: str) -> None:
        """Build the collection's HNSW index and its keyword index now, in the background,
        at once."""
        self._track(self._build(collection_id, self._one_core_each()), f"index {collection_id}")
        self.start_keywords(collection_id)

    def start_keywords(self, collection_id: str) -> None:
        """Build the collection's deferred keyword index now, in the background, unless
        this process is building it already."""
        if collection_id not in self._keyword_builds:
            self._keyword_builds.add(collection_id)
            self._track(
                self._build_keywords(collection_id, self._one_core_each()),
                f"keywords {collection_id}",
            )

    def _one_core_each(self) -> bool:
        """Whether builds started now keep to one core each, without PostgreSQL's parallel
        workers: while another upload of this process is in flight (besides the caller's
        own). The workers took the cores its commit needed: two uploads at once into new
        collections answered at 1.88 s with them and 1.69 s without, both indexed at 2.54
        and 2.55 s (benchmark 1b, 1,536-d, session 21)."""
        callers = 0 if _additions_after_upload.get() is None else 1
        return self._foreground > callers

    def add_pending(self, collection_id: str, written: int) -> None:
        """Add the collection's pending chunks to its graph now, in the background, after a
        write of `written` chunks: one task per lane, as many lanes as the write has
        batches; lane 0, if it is running already, runs again, so it takes them if it is
        ending. Called during an upload (`foreground`), it waits for the upload's end."""
        asked = _additions_after_upload.get()
        if asked is not None:
            asked.append((collection_id, written))
            return
        if 0 in self._lanes.get(collection_id, set()):
            self._add_again.add(collection_id)
        self._start_lanes(
            collection_id, range(min(self.GRAPH_LANES, math.ceil(written / self.ADD_BATCH)))
        )

    def _start_lanes(self, collection_id: str, lanes: range) -> None:
        """A task for each of these lanes of the collection's additions not running yet."""
        if not lanes:
            return
        busy = self._lanes.setdefault(collection_id, set())
        for lane in lanes:
            if lane not in busy:
                busy.add(lane)
                self._track(self._add_until_done(collection_id, lane), f"graph {collection_id}")

    async def catch_up(self) -> None:
        """Build every missing index and add every pending chunk (a process died between
        committing chunks and this work)."""
        async with self.database.read_session() as session:
            partitions = ChunkPartitionRepository(session)
            unindexed = await partitions.unindexed_collections()
            keywords = await partitions.collections_with_deferred_keywords()
            pending = await partitions.collections_with_pending_chunks()
        for collection_id in unindexed:
            await self._build(collection_id)
        for collection_id in keywords:
            await self._build_keywords(collection_id)
        for collection_id in pending:
            await asyncio.gather(
                *(self._add(collection_id, lane) for lane in range(self.GRAPH_LANES))
            )

    async def wait(self) -> None:
        """Let the work in flight end (before the process stops)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _track(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _build(self, collection_id: str, one_core: bool = False) -> None:
        try:
            async with self._slots, self.database.session() as session:
                if one_core:
                    await without_parallel_workers(session)
                built = await ChunkPartitionRepository(session).build_if_missing(
                    collection_id, self.memory_mb
                )
        except Exception:
            # The chunks are committed and searchable; the next write or sweep builds it.
            logger.exception("could not build the vector index of collection %s", collection_id)
            return
        if built:
            logger.info(
                "built the deferred vector index of collection %s%s",
                collection_id,
                " on one core (an upload was in flight)" if one_core else "",
            )

    async def _build_keywords(self, collection_id: str, one_core: bool = False) -> None:
        try:
            async with self._slots, self.database.session() as session:
                if one_core:
                    await without_parallel_workers(session)
                await ChunkPartitionRepository(session).build_keyword_index(collection_id)
        except Exception:
            # The chunks are committed and keyword searches score them from their words;
            # the next write or sweep builds it.
            logger.exception("could not build the keyword index of collection %s", collection_id)
        finally:
            self._keyword_builds.discard(collection_id)

    async def _add_until_done(self, collection_id: str, lane: int) -> None:
        """Lane 0 adds until no chunk waits, again if more were written while it ran: every
        write's chunks join the graph. The other lanes help once."""
        try:
            while True:
                if lane == 0:
                    self._add_again.discard(collection_id)
                await self._add(collection_id, lane)
                if lane or collection_id not in self._add_again:
                    return
        finally:
            busy = self._lanes[collection_id]
            busy.discard(lane)
            if not busy:
                del self._lanes[collection_id]

    async def _add(self, collection_id: str, lane: int) -> None:
        added = 0
        try:
            async with self._slots:
                # The first lane runs until no chunk waits; the others while no upload is
                # in flight.
                while True:
                    if lane and self._foreground:
                        self._held_off.add(collection_id)
                        break
                    async with self.database.session() as session:
                        batch = await ChunkPartitionRepository(session).add_to_graph(
                            collection_id, self.ADD_BATCH, lane
                        )
                    added += batch
                    if batch < self.ADD_BATCH:
                        break
        except Exception:
            # The chunks are committed and found by the exact scan; the next write or sweep
            # adds them.
            logger.exception("could not add chunks to the graph of collection %s", collection_id)
        if added:
            logger.info("added %d chunks to the graph of collection %s", added, collection_id)
