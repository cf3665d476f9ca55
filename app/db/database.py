"""The connection to PostgreSQL: engine, sessions, and the embedded server when used."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pgvector.asyncpg import register_vector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings, old_data_dir_notice
from app.db.embedded import EmbeddedPostgres
from app.db.types import quantizes_vectors

logger = logging.getLogger(__name__)


def hnsw_ef_search(settings: Settings) -> int:
    """The HNSW scans' candidate list: RAGSTORE_HNSW_EF_SEARCH, and with the quantized index
    (1,024 dimensions or more) at least the candidates re-ranked (benchmark 4c)."""
    if quantizes_vectors(settings.embedding_dimensions):
        return max(settings.hnsw_ef_search, settings.vector_rerank_candidates)
    return settings.hnsw_ef_search


def _register_vector_codec(dbapi_connection: Any, _record: object) -> None:
    """Binary vectors on every connection: COPY needs them, and they are compact."""
    try:
        dbapi_connection.run_async(register_vector)
    except ValueError:
        # No vector type yet: a database that has not been migrated.
        logger.debug("vector type not found; codec not registered")


def _engine(url: str, settings: Settings, pool_size: int, **options: Any) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Past this wait for a connection, the request is answered 503 (web/errors.py).
        pool_timeout=settings.db_pool_timeout_seconds,
        # A connection broken by a database restart is replaced, not handed out.
        pool_pre_ping=True,
        connect_args={
            "timeout": 10,
            # Filtered vector searches keep scanning the HNSW index until
            # LIMIT rows match (pgvector 0.8), instead of returning fewer.
            "server_settings": {
                "hnsw.iterative_scan": "relaxed_order",
                # A quantized index's scan keeps as many candidates as are re-ranked.
                "hnsw.ef_search": str(hnsw_ef_search(settings)),
                # Statements are prepared and cached per connection. After five runs
                # PostgreSQL may switch to a generic plan, made without the values; for
                # BM25's statements (a LIMIT per query word, a threshold) it chose
                # joins that took 9.6 ms instead of 6.6 ms at 20,000 chunks.
                "plan_cache_mode": "force_custom_plan",
            },
        },
        **options,
    )
    event.listen(engine.sync_engine, "connect", _register_vector_codec)
    return engine


class Database:
    """Owns the engine and, without DATABASE_URL, this process's share of the embedded server."""

    def __init__(self, url: str, settings: Settings, embedded: EmbeddedPostgres | None) -> None:
        self.url = url
        self.embedded = embedded
        self.engine: AsyncEngine = _engine(url, settings, settings.db_pool_size)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads have a pool of their own, so writers (or a slow provider) can never take
        # every connection from a search; and they need no transaction: in autocommit
        # asyncpg sends no BEGIN and no COMMIT around a search (benchmark 4's overhead).
        self.read_engine: AsyncEngine = _engine(
            url, settings, settings.db_read_pool_size, isolation_level="AUTOCOMMIT"
        )
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @classmethod
    async def open(cls, settings: Settings) -> "Database":
        """Connect to DATABASE_URL, or start (or join) the embedded server."""
        if settings.database_url:
            return cls(settings.database_url, settings, embedded=None)
        if (notice := old_data_dir_notice(settings)) is not None:
            logger.warning(notice)
        embedded = EmbeddedPostgres(settings.data_dir.expanduser())
        # Starting the server runs initdb/pg_ctl: blocking work, kept off the event loop.
        url = await asyncio.to_thread(embedded.start)
        logger.info("using the embedded PostgreSQL in %s", embedded.pgdata)
        return cls(url, settings, embedded=embedded)

    async def close(self) -> None:
        await self.engine.dispose()
        await self.read_engine.dispose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """For work that only reads: every statement runs on its own, nothing to commit."""
        async with self.read_sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block succeeds, rolled back otherwise."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
