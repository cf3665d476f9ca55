"""SQL for the processed-document cache, the table ingestion owns. Cached chunks go
through binary COPY."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from app.db.models import ProcessedDocument
from app.db.repository import RepositoryBase, driver_connection

CACHED_CHUNK_COLUMNS = ("cache_key", "chunk_index", "text", "metadata", "embedding")


class ProcessedDocumentRepository(RepositoryBase[ProcessedDocument]):
    """The cache of parsed, chunked and embedded content."""

    model = ProcessedDocument

    async def get(self, cache_key: str) -> ProcessedDocument | None:
        return await self.session.get(ProcessedDocument, cache_key)

    async def touch(self, cache_key: str) -> None:
        await self.session.execute(
            update(ProcessedDocument)
            .where(ProcessedDocument.cache_key == cache_key)
            .values(last_used_at=func.now())
        )

    async def replace(self, entry: ProcessedDocument) -> None:
        """Start a fresh entry (an earlier, failed or evicted one is dropped with its chunks)."""
        await self.session.execute(
            delete(ProcessedDocument).where(ProcessedDocument.cache_key == entry.cache_key)
        )
        self.session.add(entry)
        await self.session.flush()

    async def copy_chunks(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write cached chunk rows in CACHED_CHUNK_COLUMNS order."""
        driver = await driver_connection(self.session)
        await driver.copy_records_to_table(
            "processed_chunks", records=rows, columns=CACHED_CHUNK_COLUMNS
        )

    async def evict(self, max_entries: int, max_age: timedelta) -> int:
        """Drop entries unused for longer than max_age, then the least recently used
        beyond max_entries. Their chunks go with them (foreign key cascade)."""
        expired = await self.session.execute(
            delete(ProcessedDocument).where(
                ProcessedDocument.last_used_at < datetime.now(UTC) - max_age
            )
        )
        keep = (
            select(ProcessedDocument.cache_key)
            .order_by(ProcessedDocument.last_used_at.desc())
            .limit(max_entries)
        )
        surplus = await self.session.execute(
            delete(ProcessedDocument).where(ProcessedDocument.cache_key.not_in(keep))
        )
        return int(getattr(expired, "rowcount", 0)) + int(getattr(surplus, "rowcount", 0))
