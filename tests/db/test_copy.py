"""Binary COPY sent straight to the driver belongs to the session's transaction, even as
its first statement: rolled back with it, never committed on its own."""

import pytest
from sqlalchemy import text

from app.db.database import Database
from app.db.repository import driver_connection
from tests.support.settings import base_settings


async def test_a_copy_as_the_first_statement_rolls_back_with_its_session(
    database_url: str,
) -> None:
    database = await Database.open(base_settings(database_url=database_url))
    try:
        with pytest.raises(RuntimeError, match="undo"):
            async with database.session() as session:
                driver = await driver_connection(session)
                await driver.copy_records_to_table(
                    "collections", records=[("copied", "copied")], columns=("id", "name")
                )
                raise RuntimeError("undo")
        async with database.read_session() as session:
            left = await session.scalar(text("SELECT count(*) FROM collections"))
    finally:
        await database.close()

    assert left == 0
