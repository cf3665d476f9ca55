"""The helpers every repository shares (app/db/repository.py)."""

from sqlalchemy import text

from app.db.database import Database
from app.db.repository import at_most_parallel_maintenance_workers
from tests.support.settings import base_settings

WORKERS = "SELECT current_setting('max_parallel_maintenance_workers')::integer"


async def test_parallel_maintenance_workers_are_capped_for_one_transaction_only(
    database_url: str,
) -> None:
    """A cap below PostgreSQL's own setting lowers it, one above leaves it, and neither
    outlives its transaction."""
    database = await Database.open(base_settings(database_url=database_url, db_pool_size=1))
    try:
        async with database.session() as session:
            own = await session.scalar(text(WORKERS))
        async with database.session() as session:
            await at_most_parallel_maintenance_workers(session, 0)
            capped = await session.scalar(text(WORKERS))
        async with database.session() as session:
            await at_most_parallel_maintenance_workers(session, own + 5)
            above = await session.scalar(text(WORKERS))
        async with database.session() as session:
            after = await session.scalar(text(WORKERS))
    finally:
        await database.close()

    assert own >= 1, "PostgreSQL's default lets an index build have workers"
    assert (capped, above, after) == (0, own, own)
