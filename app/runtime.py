"""Everything a running ragstore holds: database, model clients, services.

The HTTP server's lifespan and the Python API facades both open one, so they
start, migrate and check the database the same way.
"""

import asyncio
import logging

import numpy as np
from sqlalchemy.exc import DBAPIError

from app.chat.service import ChatService
from app.core.config import Settings
from app.db import migrate
from app.db.database import Database
from app.document.index_builds import VectorIndexBuilds
from app.embeddings.base import EmbeddingModel
from app.embeddings.factory import create_embedding_model
from app.embeddings.space import verify_embedding_space
from app.embeddings.warm_up import ModelWarmUp
from app.ingestion.service import IngestionService
from app.ingestion.upload import remove_stale_copies
from app.jobs.queue import JobQueue
from app.jobs.service import JobService
from app.llm.client import LLMClients
from app.search.service import SearchQuery, SearchService

logger = logging.getLogger(__name__)
# No collection id may be empty (the id rule), so this one holds nothing.
WARM_UP_COLLECTION = ""
WARM_UP_TEXT = "warm up"


class Runtime:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        llm_clients: LLMClients,
        embedding_model: EmbeddingModel,
    ) -> None:
        self.settings = settings
        self.database = database
        self.llm_clients = llm_clients
        self.embedding_model = embedding_model
        self.index_builds = VectorIndexBuilds(database, settings.index_build_memory_mb)
        self.ingestion = IngestionService(database, embedding_model, settings, self.index_builds)
        self.search = SearchService(embedding_model, settings)
        self.chat = ChatService(database, self.search, llm_clients, settings)
        self.queue = JobQueue(database.url, settings.worker_stalled_after_seconds)
        self.jobs = JobService(database, self.ingestion, settings, self.queue)
        # Started by the server (the CLI loads the model only if a command needs it).
        self.model_warm_up = ModelWarmUp(embedding_model, then=self._warm_up_searches)

    @classmethod
    async def open(cls, settings: Settings) -> "Runtime":
        database = await Database.open(settings)
        try:
            await _prepare_schema(database, settings)
        except BaseException:
            await database.close()
            raise
        llm_clients = LLMClients(settings)
        runtime = cls(
            settings, database, llm_clients, create_embedding_model(settings, llm_clients)
        )
        await runtime.queue.open()
        removed = await asyncio.to_thread(remove_stale_copies)
        if removed:
            logger.info("removed %d temporary upload copies left by killed processes", removed)
        return runtime

    async def _warm_up_searches(self) -> None:
        """One search of each mode in a collection that cannot exist: the read pool opens a
        connection, pgvector's codec loads, and each statement is compiled and cached."""
        # Any unit vector: no provider is asked (a remote one would bill it), and the
        # local model warmed itself up already.
        vector = np.zeros(self.embedding_model.dimensions, dtype=np.float32)
        vector[0] = 1.0
        async with self.database.read_session() as session:
            for mode in ("vector", "keyword", "hybrid"):
                query = SearchQuery(WARM_UP_COLLECTION, WARM_UP_TEXT, k=1, mode=mode)
                await self.search.search_by_vector(session, query, vector)

    async def close(self) -> None:
        await self.model_warm_up.stop()
        await self.queue.close()
        await self.index_builds.wait()
        await self.embedding_model.close()
        await self.llm_clients.close()
        await self.database.close()


async def _prepare_schema(database: Database, settings: Settings) -> None:
    """Migrate (when configured) and check the embedding dimension before serving."""
    try:
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate.upgrade, settings, database.url)
        async with database.session() as session:
            await verify_embedding_space(session, settings)
    except (OSError, DBAPIError) as exc:
        # Serve anyway: /api/health reports the outage and requests get 503s
        # until PostgreSQL is back, instead of a crash loop.
        logger.error("database unreachable at start-up (%s); serving without it", exc)
