"""The processed-document cache is bounded by entries and age, and cleans itself."""

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.db import scalar
from tests.support.servers import serve_app
from tests.support.uploads import upload


async def test_the_cache_keeps_at_most_its_entry_limit_most_recent_first(
    settings: Settings, db: AsyncConnection
) -> None:
    bounded = settings.model_copy(update={"cache_max_entries": 2})
    async with serve_app(bounded) as client:
        for n in range(4):
            await upload(client, f"Document number {n} about topic {n}.", f"{n}.txt")

    cached = await scalar(db, "SELECT array_agg(c.text ORDER BY c.text) FROM processed_chunks c")
    assert cached == ["Document number 2 about topic 2.", "Document number 3 about topic 3."]
    assert await scalar(db, "SELECT count(*) FROM chunks") == 4, "documents keep their chunks"


async def test_entries_older_than_the_age_limit_are_removed(
    settings: Settings, db: AsyncConnection
) -> None:
    async with serve_app(settings) as client:
        await upload(client, "An old document.", "old.txt")
        await db.exec_driver_sql(
            "UPDATE processed_documents SET last_used_at = now() - interval '40 days'"
        )
        await db.commit()
        await upload(client, "A new document.", "new.txt")

    kept = await scalar(db, "SELECT array_agg(text) FROM processed_chunks")
    assert kept == ["A new document."]
