from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession


async def advisory_lock(session: AsyncSession, name: str) -> None:
    """Hold a transaction-scoped PostgreSQL advisory lock on `name` until commit or rollback.

    Callers that take several take them in one fixed order (a document's lock
    before a cache entry's), so two transactions cannot deadlock.
    """
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))
