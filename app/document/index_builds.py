"""A collection's first chunks answer before their HNSW index is built.

Building the graph over a collection's first chunks (partitions.py) took 0.3 to
0.45 s of the 2.7 s of one upload of 2,730 chunks at 1,536 dimensions
(benchmark 1b). Up to `RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS` (10,000)
first chunks are committed without it, so the upload answers first, and the
index is built right after, in a transaction of its own, by the process that
wrote them.

What a search sees meanwhile: the chunks, found by a scan of the partition
instead of the graph (about 77 ms at 10,000 chunks of 1,536 dimensions,
against 4 ms through the index). Writes into the collection wait for the
build under the partition's lock, as they wait for a first fill.

If that process dies first, nothing is lost: the next write into the
collection, or a worker's sweep (`build_missing`), builds the index.
"""

import asyncio
import logging

from app.db.database import Database
from app.document.partitions import ChunkPartitionRepository

logger = logging.getLogger(__name__)


class VectorIndexBuilds:
    """The deferred index builds of this process, each a task until it ends."""

    # Builds at once: each takes a core and a pooled connection while it runs, and many new
    # collections at once must not take every connection that requests need.
    CONCURRENT_BUILDS = 2

    def __init__(self, database: Database, memory_mb: int) -> None:
        self.database = database
        self.memory_mb = memory_mb
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.CONCURRENT_BUILDS)

    def start(self, collection_id: str) -> None:
        """Build the collection's index now, in the background."""
        task = asyncio.create_task(self._build(collection_id), name=f"index {collection_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def build_missing(self) -> None:
        """Build the index of every collection whose chunks have none (a process died
        between committing its first chunks and building their index)."""
        async with self.database.read_session() as session:
            unindexed = await ChunkPartitionRepository(session).unindexed_collections()
        for collection_id in unindexed:
            await self._build(collection_id)

    async def wait(self) -> None:
        """Let the builds in flight end (before the process stops)."""
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _build(self, collection_id: str) -> None:
        try:
            async with self._slots, self.database.session() as session:
                built = await ChunkPartitionRepository(session).build_if_missing(
                    collection_id, self.memory_mb
                )
        except Exception:
            # The chunks are committed and searchable; the next write or sweep builds it.
            logger.exception("could not build the vector index of collection %s", collection_id)
            return
        if built:
            logger.info("built the deferred vector index of collection %s", collection_id)
