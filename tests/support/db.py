"""Databases for tests: created from the migrated template, read from outside any request."""

import uuid
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.base import Base
from app.db.embedded import EmbeddedPostgres

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


def _ours(name: str | None, type_: str, _parent: object) -> bool:
    """procrastinate's tables come from its own SQL, not from our models."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def schema_differences(connection: Connection) -> list[object]:
    """What Alembic's autogenerate finds between the models and this database's schema."""
    context = MigrationContext.configure(connection, opts={"include_name": _ours})
    return list(compare_metadata(context, Base.metadata))
