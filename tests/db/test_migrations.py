"""Alembic owns the schema: migrations run both ways and match the models."""

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from tests.support.db import create_database, schema_differences
from tests.support.settings import base_settings

TABLES = {
    "collections",
    "documents",
    "chunks",
    "processed_documents",
    "processed_chunks",
    "embedding_space",
    "ingestion_jobs",
    "document_files",
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
}


@pytest.fixture
def empty_database_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    name = create_database(postgres)
    yield postgres.url(name)
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    settings = base_settings()

    migrate.upgrade(settings, empty_database_url)
    assert migrate.current(settings, empty_database_url) == "0004_document_versions (head)"
    migrate.downgrade(settings, empty_database_url, "0001_initial_schema")
    assert migrate.current(settings, empty_database_url) == "0001_initial_schema"
    migrate.downgrade(settings, empty_database_url, "base")
    assert "no revision" in migrate.current(settings, empty_database_url)
    migrate.upgrade(settings, empty_database_url)
    assert migrate.current(settings, empty_database_url) == "0004_document_versions (head)"


async def test_downgrade_to_base_removes_every_table(empty_database_url: str) -> None:
    settings = base_settings()
    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
    assert await _tables(empty_database_url) == TABLES

    await asyncio.to_thread(migrate.downgrade, settings, empty_database_url, "base")

    assert await _tables(empty_database_url) == set()


async def test_models_match_the_migrations(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(schema_differences)
    await engine.dispose()

    assert differences == []


async def test_migration_records_the_embedding_space_and_sizes_vectors(
    empty_database_url: str,
) -> None:
    settings = base_settings(
        embedding_provider="openai", embedding_model="custom-embedder", embedding_dimensions=256
    )
    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)

    engine = create_async_engine(empty_database_url)
    async with engine.connect() as connection:
        space = (await connection.execute(text("SELECT * FROM embedding_space"))).one()
        column_type = await connection.scalar(
            text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
            )
        )
    await engine.dispose()

    assert (space.provider, space.model, space.dimensions) == ("openai", "custom-embedder", 256)
    assert column_type == "vector(256)"
