"""Read sessions run without a transaction, and hand their connection back transactional."""

from sqlalchemy import text

from app.db.database import Database
from tests.support.settings import base_settings

# now() is the start of the transaction: equal twice inside one, different in autocommit.
TWO_CLOCKS = "SELECT now()", "SELECT pg_sleep(0.01), now()"


async def test_a_read_session_runs_each_statement_on_its_own(database_url: str) -> None:
    database = await Database.open(base_settings(database_url=database_url, db_pool_size=1))
    try:
        async with database.read_session() as session:
            first = await session.scalar(text(TWO_CLOCKS[0]))
            second = (await session.execute(text(TWO_CLOCKS[1]))).one()[1]
            in_transaction = await session.scalar(text("SELECT txid_current_if_assigned()"))
        # Writes have a pool of their own: this session starts a transaction as usual.
        async with database.session() as session:
            third = await session.scalar(text(TWO_CLOCKS[0]))
            fourth = (await session.execute(text(TWO_CLOCKS[1]))).one()[1]
    finally:
        await database.close()

    assert first != second, "autocommit: each statement is its own transaction"
    assert in_transaction is None
    assert third == fourth, "the connection went back to the pool transactional"
