"""What every repository shares; each domain repository adds only its own queries."""

from typing import Any, Generic, TypeVar

import asyncpg
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

    async def delete(self, obj: ModelT) -> None:
        await self.session.delete(obj)
        await self.session.flush()


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    return driver
