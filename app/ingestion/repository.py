"""Chunk, cache and stored-file writes. Bulk rows go through binary COPY, not row-by-row INSERT."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Chunk, DocumentFile, ProcessedDocument

CHUNK_COLUMNS = ("document_id", "collection_id", "chunk_index", "text", "metadata", "embedding")
CACHED_CHUNK_COLUMNS = ("cache_key", "chunk_index", "text", "metadata", "embedding")
# Stored uploads are kept in rows of this size: small enough to stream, big enough to be few.
PART_BYTES = 1024 * 1024


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    return driver


class ChunkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def copy(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write chunk rows in CHUNK_COLUMNS order; metadata as JSON text."""
        driver = await driver_connection(self.session)
        await driver.copy_records_to_table("chunks", records=rows, columns=CHUNK_COLUMNS)

    async def copy_from_cache(
        self,
        cache_key: str,
        document_id: uuid.UUID,
        collection_id: str,
        document_metadata: dict[str, Any],
    ) -> int:
        """Materialise a cached document's chunks for a document, inside PostgreSQL."""
        result = await self.session.execute(
            text(
                """
                INSERT INTO chunks
                    (document_id, collection_id, chunk_index, text, metadata, embedding)
                SELECT :document_id, :collection_id, chunk_index, text,
                       CAST(:document_metadata AS jsonb) || metadata
                           || jsonb_build_object('chunk_index', chunk_index),
                       embedding
                FROM processed_chunks
                WHERE cache_key = :cache_key
                ORDER BY chunk_index
                """
            ),
            {
                "document_id": document_id,
                "collection_id": collection_id,
                "document_metadata": json.dumps(document_metadata),
                "cache_key": cache_key,
            },
        )
        return int(getattr(result, "rowcount", 0))

    async def delete_for_document(self, document_id: uuid.UUID) -> None:
        await self.session.execute(delete(Chunk).where(Chunk.document_id == document_id))

    async def list_page(
        self, document_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[Chunk], int]:
        rows = await self.session.scalars(
            select(Chunk)
            .where(Chunk.document_id == document_id)
            .order_by(Chunk.chunk_index)
            .limit(limit)
            .offset(offset)
        )
        total = await self.session.scalar(
            select(func.count()).where(Chunk.document_id == document_id)
        )
        return rows.all(), total or 0


class ProcessedDocumentRepository:
    """The cache of parsed, chunked and embedded content."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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


class DocumentFileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store(self, document_id: uuid.UUID, path: Path) -> None:
        """Keep a file's bytes with its document (1 MiB rows, written by COPY)."""
        await self.remove(document_id)
        driver = await driver_connection(self.session)
        await driver.copy_records_to_table(
            "document_files",
            records=_parts(document_id, path),
            columns=("document_id", "part", "data"),
        )

    async def has_file(self, document_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(func.count()).where(DocumentFile.document_id == document_id)
        )
        return bool(found)

    async def parts(self, document_id: uuid.UUID) -> AsyncIterator[bytes]:
        """The bytes, one row at a time: a large file never sits in memory whole."""
        count = await self.session.scalar(
            select(func.count()).where(DocumentFile.document_id == document_id)
        )
        for part in range(count or 0):
            data = await self.session.scalar(
                select(DocumentFile.data).where(
                    DocumentFile.document_id == document_id, DocumentFile.part == part
                )
            )
            assert data is not None
            yield data

    async def remove(self, document_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(DocumentFile).where(DocumentFile.document_id == document_id)
        )


async def _parts(document_id: uuid.UUID, path: Path) -> AsyncIterator[tuple[uuid.UUID, int, bytes]]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        part = 0
        while block := await asyncio.to_thread(handle.read, PART_BYTES):
            yield (document_id, part, block)
            part += 1
    finally:
        await asyncio.to_thread(handle.close)
