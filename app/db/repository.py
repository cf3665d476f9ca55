"""What every repository shares; each domain repository adds only its own queries."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import Select, func, inspect, select, text, tuple_
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import NotFound
from app.db.base import Base

ModelT = TypeVar("ModelT", bound=Base)


class RepositoryBase(Generic[ModelT]):
    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_one_or_none(self, id_: Any) -> ModelT | None:
        return await self.session.get(self.model, id_)

    async def create(self, obj: ModelT, *, flush: bool = True) -> ModelT:
        self.session.add(obj)
        if flush:
            await self.session.flush()
            await self.session.refresh(obj)
        return obj

    async def delete(self, obj: ModelT) -> bool:
        """Delete the row (by primary key); False when another transaction deleted it first.

        A Core DELETE, not `session.delete`: the ORM's flush treats a row that is already
        gone as stale data (a 500), where the caller wants to answer 404.
        """
        mapper = inspect(self.model)
        key = [
            column == getattr(obj, mapper.get_property_by_column(column).key)
            for column in mapper.primary_key
        ]
        deleted = await self.session.execute(
            sql_delete(self.model).where(*key).returning(*mapper.primary_key)
        )
        self.session.expunge(obj)
        return deleted.first() is not None


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction.

    SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it runs itself, so
    a COPY sent straight to the driver before any other statement would commit on its
    own; then a statement is run first, which opens the transaction.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")
    return driver


async def execute_formatted(session: AsyncSession, template: str, *arguments: str) -> None:
    """Run DDL, which takes no parameters: PostgreSQL's format() quotes the names (%I) and
    values (%L), and the statement goes to the driver as it is (a `:` in an id is no bind)."""
    driver = await driver_connection(session)
    placeholders = "".join(f", ${number + 2}::text" for number in range(len(arguments)))
    statement = await driver.fetchval(
        f"SELECT format($1::text{placeholders})", template, *arguments
    )
    await driver.execute(statement)


async def without_parallel_workers(session: AsyncSession) -> None:
    """Keep this transaction's statements on its own backend: no parallel workers for its
    queries or its index builds."""
    await session.execute(
        text(
            "SELECT set_config('max_parallel_workers_per_gather', '0', true), "
            "set_config('max_parallel_maintenance_workers', '0', true)"
        )
    )


async def at_most_parallel_maintenance_workers(session: AsyncSession, workers: int) -> None:
    """At most `workers` of PostgreSQL's parallel workers for this transaction's index
    builds (fewer if its own max_parallel_maintenance_workers is lower)."""
    await session.execute(
        text(
            "SELECT set_config('max_parallel_maintenance_workers', "
            "least(current_setting('max_parallel_maintenance_workers')::integer, :workers)"
            "::text, true)"
        ),
        {"workers": workers},
    )


# Stored bytes are kept in rows of this size: small enough to stream, big enough to be few.
PART_BYTES = 1024 * 1024


async def store_parts(
    session: AsyncSession, table: str, key_column: str, key: Any, path: Path
) -> None:
    """A file's bytes as rows (key, part, data) of `table`, 1 MiB each, written by COPY."""
    driver = await driver_connection(session)
    await driver.copy_records_to_table(
        table, records=_parts(key, path), columns=(key_column, "part", "data")
    )


async def read_parts(
    session: AsyncSession,
    key_attribute: InstrumentedAttribute[Any],
    data_attribute: InstrumentedAttribute[bytes],
    part_attribute: InstrumentedAttribute[int],
    key: Any,
) -> AsyncIterator[bytes]:
    """The bytes stored by store_parts, one row at a time: a large file never sits in
    memory whole."""
    count = await session.scalar(select(func.count()).where(key_attribute == key))
    for part in range(count or 0):
        data = await session.scalar(
            select(data_attribute).where(key_attribute == key, part_attribute == part)
        )
        assert data is not None
        yield data


async def _parts(key: Any, path: Path) -> AsyncIterator[tuple[Any, int, bytes]]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        part = 0
        while block := await asyncio.to_thread(handle.read, PART_BYTES):
            yield (key, part, block)
            part += 1
    finally:
        await asyncio.to_thread(handle.close)


@dataclass(frozen=True)
class Cursor:
    """A page of a list ordered by creation: OpenAI's `limit`, `order`, `after`, `before`
    (the ids of the objects the page starts after or ends before)."""

    limit: int = 20
    descending: bool = True
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page(Generic[ModelT]):
    items: list[ModelT]
    has_more: bool


async def keyset_page(
    session: AsyncSession,
    statement: Select[*tuple[Any, ...]],
    order: tuple[InstrumentedAttribute[Any], InstrumentedAttribute[Any]],
    cursor: Cursor,
    anchor: Callable[[str], Select[*tuple[Any, ...]]],
) -> Page[ModelT]:
    """A page of `statement`'s rows ordered by `order` (created_at, then a unique key), from
    just after (or up to just before) the row that `anchor(id)` finds, without OFFSET: a
    page costs the same however deep it is, and rows added meanwhile do not shift it."""
    created, key = order
    backwards = cursor.before is not None and cursor.after is None
    descending = cursor.descending != backwards
    for anchor_id, after in ((cursor.after, True), (cursor.before, False)):
        if anchor_id is None:
            continue
        found = (await session.execute(anchor(anchor_id))).first()
        if found is None:
            raise NotFound(f"no object {anchor_id!r} to page from")
        bound = tuple_(created, key)
        beyond = bound < tuple_(*found) if (cursor.descending == after) else bound > tuple_(*found)
        statement = statement.where(beyond)
    ordering = (created.desc(), key.desc()) if descending else (created.asc(), key.asc())
    found_rows = await session.scalars(statement.order_by(*ordering).limit(cursor.limit + 1))
    rows = list(found_rows.all())
    has_more = len(rows) > cursor.limit
    rows = rows[: cursor.limit]
    if backwards:
        rows.reverse()
    return Page(rows, has_more)
