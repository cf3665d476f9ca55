"""Alembic environment: runs migrations over the async engine ragstore uses."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import Settings
from app.db import models  # noqa: F401  (registers every table on Base.metadata)
from app.db.base import Base, described_by_models
from app.db.embedded import EmbeddedPostgres

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# `ragstore db ...` passes settings and URL; a bare `alembic` call reads the environment.
settings: Settings = config.attributes.setdefault("settings", Settings())


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_name=described_by_models,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    url = config.attributes.get("url") or settings.database_url
    embedded = None
    if not url:
        embedded = EmbeddedPostgres(settings.data_dir)
        url = embedded.start()
    try:
        asyncio.run(_run_online(url))
    finally:
        if embedded is not None:
            embedded.stop()


if context.is_offline_mode():
    raise SystemExit("ragstore migrations run online only: review them in migrations/versions/")
run_migrations_online()
