import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


async def advisory_lock(session: AsyncSession, name: str) -> None:
    """Hold a transaction-scoped PostgreSQL advisory lock on `name` until commit or rollback.

    Callers that take several take them in one fixed order (a document's lock
    before a cache entry's), so two transactions cannot deadlock.
    """
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))


@contextlib.asynccontextmanager
async def try_session_advisory_lock(connection: AsyncConnection, name: str) -> AsyncIterator[bool]:
    """As session_advisory_lock, without waiting: whether it was taken (and is held until
    the block ends)."""
    key = func.hashtextextended(name, 0)
    taken = bool(await connection.scalar(select(func.pg_try_advisory_lock(key))))
    try:
        yield taken
    finally:
        if taken:
            await connection.execute(select(func.pg_advisory_unlock(key)))


@contextlib.asynccontextmanager
async def session_advisory_lock(connection: AsyncConnection, name: str) -> AsyncIterator[None]:
    """Hold an advisory lock on `name` for the connection's session, across its transactions
    (for statements that cannot run in one, such as DETACH ... CONCURRENTLY)."""
    key = func.hashtextextended(name, 0)
    await connection.execute(select(func.pg_advisory_lock(key)))
    try:
        yield
    finally:
        await connection.execute(select(func.pg_advisory_unlock(key)))
