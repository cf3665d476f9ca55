"""What every repository shares; each domain repository adds only its own queries."""

from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import delete as sql_delete
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

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
