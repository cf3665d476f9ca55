"""The tables of a staged first fill: a new collection's chunks, indexed and keyword-indexed
outside `chunks`, then published in the upload's commit (app/ingestion/bulk_load.py).

A staging is named by 32 hex digits; its tables are `staged_<id>_chunks`, `_terms` and
`_postings`. Its stager holds a session advisory lock (`staging_lock_key`) until the tables
are published or dropped, so the sweep (`drop_abandoned_stagings`) drops only those of a
process that died. A staging filled while its content is still being embedded is named by
the builder of the content's cache entry, and is spared while that build's lease runs:
its stager takes the lock before the entry is complete.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.db.locks import try_session_advisory_lock
from app.db.repository import driver_connection, execute_formatted
from app.document.partitions import CHUNKS_TABLE, build_hnsw_index, vector_index_name

logger = logging.getLogger(__name__)

# Also a POSIX regular expression, for PostgreSQL's `~`.
STAGED_TABLE_NAME = re.compile(r"^staged_([0-9a-f]{32})_(chunks|terms|postings)$")

# What every partition of `chunks` has besides its HNSW index (migrations 0008, 0012, 0014),
# made on a staged table after its rows (the attach adopts each instead of building one),
# by their definitions on `chunks`: one row per index, `build` a CREATE INDEX, and for a
# constraint's index `constrain`, which makes it the constraint once every index is built
# (an attach adopts only a constraint's index for a constraint; ALTER TABLE ... ADD
# PRIMARY KEY would lock the table against the builds beside it). :name is the staged table.
_INDEX_BUILDS = r"""
    SELECT regexp_replace(pg_get_indexdef(c.conindid), '^CREATE UNIQUE INDEX \S+ ON ONLY \S+ ',
                          'CREATE UNIQUE INDEX ' || quote_ident(n.name) || ' ON '
                          || quote_ident(:name) || ' ') AS build,
           format('ALTER TABLE %I ADD CONSTRAINT %I %s USING INDEX %I', :name, n.name,
                  CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, n.name)
               AS constrain
    FROM pg_constraint c
    CROSS JOIN LATERAL (SELECT :name || CASE c.contype WHEN 'p' THEN '_pkey'
                                         ELSE '_key_' || c.oid END AS name) n
    WHERE c.conrelid = 'chunks'::regclass AND c.contype IN ('p', 'u')
    UNION ALL
    SELECT regexp_replace(pg_get_indexdef(x.indexrelid),
                          '^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ ',
                          'CREATE \1INDEX ON ' || quote_ident(:name) || ' '),
           NULL
    FROM pg_index x
    WHERE x.indrelid = 'chunks'::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
"""
_STAGED_TABLES = """
    SELECT c.relname::text FROM pg_class c
    WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
      AND c.relname ~ :pattern
    ORDER BY 1
"""


def staging_lock_key(staging_id: str) -> str:
    return f"staging {staging_id}"


@dataclass(frozen=True)
class StagedTables:
    """The names of one staging's tables."""

    staging_id: str

    @property
    def chunks(self) -> str:
        return f"staged_{self.staging_id}_chunks"

    @property
    def terms(self) -> str:
        return f"staged_{self.staging_id}_terms"

    @property
    def postings(self) -> str:
        return f"staged_{self.staging_id}_postings"

    @property
    def vector_index(self) -> str:
        """The HNSW index of `chunks`, renamed as the partition's when it is published."""
        return f"staged_{self.staging_id}_hnsw"

    @property
    def all(self) -> tuple[str, str, str]:
        return self.chunks, self.terms, self.postings


@dataclass(frozen=True)
class IndexBuild:
    """One index of a staged table: its CREATE INDEX, and for a constraint's index the
    statement that makes it the constraint, run once every index of the table is built."""

    build: str
    constrain: str | None


@dataclass(frozen=True)
class StagedKeywords:
    """What keyword_index_stage returns: the postings' key, the chunks, their length."""

    postings_key: int
    chunk_count: int
    total_length: int


class StagingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_chunks_table(self, tables: StagedTables, collection_id: str) -> None:
        await execute_formatted(self.session, CHUNKS_TABLE, tables.chunks, collection_id)

    async def build_vector_index(self, tables: StagedTables, memory_mb: int) -> None:
        await build_hnsw_index(self.session, tables.chunks, tables.vector_index, memory_mb)

    async def chunk_index_builds(self, tables: StagedTables) -> list[IndexBuild]:
        """The indexes of the staged chunks besides their HNSW index."""
        rows = await self.session.execute(text(_INDEX_BUILDS), {"name": tables.chunks})
        return [IndexBuild(row.build, row.constrain) for row in rows]

    async def stage_keywords(self, tables: StagedTables) -> StagedKeywords:
        """The chunks' BM25 words and postings, unindexed (`postings_index_builds`)."""
        row = (
            await self.session.execute(
                text("SELECT * FROM keyword_index_stage(:chunks, :terms, :postings)"),
                {"chunks": tables.chunks, "terms": tables.terms, "postings": tables.postings},
            )
        ).one()
        return StagedKeywords(int(row.postings_key), int(row.chunk_count), int(row.total_length))

    async def postings_index_builds(self, tables: StagedTables) -> list[IndexBuild]:
        """The indexes of the staged postings (migration 0019)."""
        rows = await self.session.execute(
            text("SELECT * FROM keyword_postings_index_builds(:postings)"),
            {"postings": tables.postings},
        )
        return [IndexBuild(row.build, row.constrain) for row in rows]

    async def build_index(self, build: IndexBuild) -> None:
        driver = await driver_connection(self.session)
        await driver.execute(build.build)

    async def constrain(self, builds: list[IndexBuild]) -> None:
        """Make the constraints of the built indexes that are a constraint's."""
        driver = await driver_connection(self.session)
        for build in builds:
            if build.constrain is not None:
                await driver.execute(build.constrain)

    async def partition_exists(self, partition: str) -> bool:
        return bool(
            await self.session.scalar(
                text("SELECT to_regclass(quote_ident(:name)) IS NOT NULL"), {"name": partition}
            )
        )

    async def publish(
        self,
        tables: StagedTables,
        collection_id: str,
        partition: str,
        keywords: StagedKeywords,
        lock_timeout_ms: int,
    ) -> None:
        """Make the staged tables the collection's, in the caller's transaction: the chunks'
        table renamed to its partition and attached (waiting at most `lock_timeout_ms` for
        the writers of `documents` and `collections`), its words, statistics and postings
        published (keyword_index_publish, migration 0018)."""
        await execute_formatted(
            self.session, "ALTER TABLE %I RENAME TO %I", tables.chunks, partition
        )
        await execute_formatted(
            self.session,
            "ALTER INDEX %I RENAME TO %I",
            tables.vector_index,
            vector_index_name(partition),
        )
        await self.session.execute(
            text("SELECT set_config('lock_timeout', :timeout, true)"),
            {"timeout": f"{lock_timeout_ms}ms"},
        )
        await execute_formatted(
            self.session,
            "ALTER TABLE chunks ATTACH PARTITION %I FOR VALUES IN (%L)",
            partition,
            collection_id,
        )
        await self.session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
        await self.session.execute(
            text("SELECT keyword_index_publish(:id, :terms, :postings, :key, :chunks, :total)"),
            {
                "id": collection_id,
                "terms": tables.terms,
                "postings": tables.postings,
                "key": keywords.postings_key,
                "chunks": keywords.chunk_count,
                "total": keywords.total_length,
            },
        )


async def drop_staged_tables(engine: AsyncEngine, tables: StagedTables) -> None:
    """Whatever is left of a staging (nothing, once published)."""
    async with engine.begin() as connection:
        for name in tables.all:
            await connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))


# Whether the staging named by an id is still being filled ahead of its stager's lock.
StagingInProgress = Callable[[AsyncConnection, str], Awaitable[bool]]


async def _no_staging_ahead(_connection: AsyncConnection, _staging_id: str) -> bool:
    return False


async def drop_abandoned_stagings(
    engine: AsyncEngine, in_progress: StagingInProgress = _no_staging_ahead
) -> list[str]:
    """Drop the staged tables of stagers that are gone (a process died while staging);
    returns their names. A staging in progress holds its lock, or is `in_progress` (asked
    while the sweep holds the lock, which its stager takes before it stops being so), and
    is left alone."""
    dropped = []
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        staged = await connection.scalars(
            text(_STAGED_TABLES), {"pattern": STAGED_TABLE_NAME.pattern}
        )
        for name in staged.all():
            match = STAGED_TABLE_NAME.match(name)
            assert match is not None
            # Taken only if no stager holds it: then the staging is gone.
            async with try_session_advisory_lock(
                connection, staging_lock_key(match.group(1))
            ) as abandoned:
                if abandoned and not await in_progress(connection, match.group(1)):
                    await connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
                    dropped.append(name)
    if dropped:
        logger.info("dropped the staged tables of stagings cut short: %s", dropped)
    return dropped
