"""Databases for tests: created from the migrated template, read from outside any request."""

import asyncio
import uuid
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.base import Base, described_by_models
from app.db.embedded import EmbeddedPostgres
from app.document.partitions import ChunkPartitionRepository

TEMPLATE_DATABASE = "ragstore_template"


def create_database(postgres: EmbeddedPostgres, template: str | None = None) -> str:
    name = f"test_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template};" if template else ";"))
    return name


async def scalar(db: AsyncConnection, sql: str, **params: object) -> Any:
    """One value from SQL, seen from outside any request's transaction."""
    result = await db.scalar(text(sql), params)
    await db.commit()
    return result


def schema_differences(connection: Connection) -> list[object]:
    """What Alembic's autogenerate finds between the models and this database's schema."""
    context = MigrationContext.configure(connection, opts={"include_name": described_by_models})
    return list(compare_metadata(context, Base.metadata))


async def chunk_partition(db: AsyncConnection, collection_id: str) -> str:
    """The collection's partition of `chunks`, made as ragstore makes it if it is missing,
    for tests that write chunk rows with SQL (then `index_chunk_partition`)."""
    async with AsyncSession(bind=db) as session:
        await ChunkPartitionRepository(session).create_if_missing(collection_id)
        await session.commit()
    return str(await scalar(db, "SELECT chunk_partition_name(:id)", id=collection_id))


async def index_chunk_partition(db: AsyncConnection, collection_id: str) -> None:
    """The HNSW index over the rows a test wrote into the collection's partition."""
    async with AsyncSession(bind=db) as session:
        await ChunkPartitionRepository(session).build_vector_index(collection_id)
        await session.commit()


async def wait_until(
    connection: AsyncConnection, sql: str, what: str, seconds: float = 30, **params: object
) -> Any:
    """The first true value `sql` gives, read every 50 ms each in a transaction of its own
    (for tests that wait for another session to reach a point); TimeoutError naming `what`
    if it has not after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await connection.scalar(text(sql), params)
        await connection.rollback()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what}: not within {seconds:g} s")
        await asyncio.sleep(0.05)


async def vector_index_built(connection: AsyncConnection, collection_id: str) -> None:
    """Wait for the collection's HNSW index: a new collection's first chunks answer before
    it is built (app/document/index_builds.py)."""
    await wait_until(
        connection,
        "SELECT to_regclass(chunk_partition_name(:id) || '_embedding_hnsw') IS NOT NULL",
        f"the HNSW index of collection {collection_id!r}",
        id=collection_id,
    )
