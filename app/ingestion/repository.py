"""SQL for the processed-document cache, the table ingestion owns. Cached chunks go
through binary COPY.

An entry is claimed by one builder at a time (compare-and-set on `builder_id`),
filled slice by slice while the builder's lease is renewed, then `complete`.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.models import CacheState, ProcessedChunk, ProcessedDocument
from app.db.repository import RepositoryBase, driver_connection

CACHED_CHUNK_COLUMNS = ("cache_key", "chunk_index", "text", "metadata", "embedding")


@dataclass(frozen=True)
class Claim:
    """The outcome of asking for an entry: this builder's to fill, or someone else's."""

    claimed: bool
    state: CacheState
    chunk_count: int


class ProcessedDocumentRepository(RepositoryBase[ProcessedDocument]):
    """The cache of parsed, chunked and embedded content."""

    model = ProcessedDocument

    async def claim(self, entry: ProcessedDocument, builder: uuid.UUID, lease: timedelta) -> Claim:
        """Take the entry to build when it is new, or when its builder's lease ran out;
        otherwise say whether it is complete (and touch it) or still being built."""
        lease_until = func.now() + lease
        statement = (
            insert(ProcessedDocument)
            .values(
                cache_key=entry.cache_key,
                content_sha256=entry.content_sha256,
                chunk_size=entry.chunk_size,
                chunk_overlap=entry.chunk_overlap,
                embedding_model=entry.embedding_model,
                chunk_count=0,
                state=CacheState.BUILDING,
                builder_id=builder,
                lease_until=lease_until,
            )
            .on_conflict_do_update(
                index_elements=[ProcessedDocument.cache_key],
                set_={
                    "builder_id": builder,
                    "lease_until": lease_until,
                    "chunk_count": 0,
                    "last_used_at": func.now(),
                },
                where=(ProcessedDocument.state == CacheState.BUILDING)
                & (ProcessedDocument.lease_until < func.now()),
            )
            .returning(ProcessedDocument.cache_key)
        )
        if (await self.session.execute(statement)).first() is not None:
            # Taken over from a builder that died: the slices it stored go.
            await self.session.execute(
                delete(ProcessedChunk).where(ProcessedChunk.cache_key == entry.cache_key)
            )
            return Claim(claimed=True, state=CacheState.BUILDING, chunk_count=0)
        found = (
            await self.session.execute(
                select(ProcessedDocument.state, ProcessedDocument.chunk_count).where(
                    ProcessedDocument.cache_key == entry.cache_key
                )
            )
        ).one_or_none()
        if found is None or found.state == CacheState.BUILDING:
            # Someone builds it, or it was dropped a moment ago: ask again shortly.
            return Claim(claimed=False, state=CacheState.BUILDING, chunk_count=0)
        await self.touch(entry.cache_key)
        return Claim(claimed=False, state=CacheState.COMPLETE, chunk_count=found.chunk_count)

    async def renew(self, cache_key: str, builder: uuid.UUID, lease: timedelta) -> bool:
        """Extend this builder's lease; False when the entry is no longer its to build."""
        renewed = await self.session.execute(
            update(ProcessedDocument)
            .where(*self._building_by(cache_key, builder))
            .values(lease_until=func.now() + lease)
            .returning(ProcessedDocument.cache_key)
        )
        return renewed.first() is not None

    async def complete(self, cache_key: str, builder: uuid.UUID, chunk_count: int) -> bool:
        completed = await self.session.execute(
            update(ProcessedDocument)
            .where(*self._building_by(cache_key, builder))
            .values(
                state=CacheState.COMPLETE,
                chunk_count=chunk_count,
                builder_id=None,
                lease_until=None,
            )
            .returning(ProcessedDocument.cache_key)
        )
        return completed.first() is not None

    async def abandon(self, cache_key: str, builder: uuid.UUID) -> None:
        """Drop an entry this builder could not finish (its chunks go with it)."""
        await self.session.execute(
            delete(ProcessedDocument).where(*self._building_by(cache_key, builder))
        )

    async def use_complete(self, cache_key: str) -> bool:
        """Mark the complete entry used now. The update's row lock also holds it against
        eviction until the transaction ends (a share lock would not do: two commits of one
        content that both share-lock it and then touch it deadlock). False if it is gone."""
        used = await self.session.execute(
            update(ProcessedDocument)
            .where(
                ProcessedDocument.cache_key == cache_key,
                ProcessedDocument.state == CacheState.COMPLETE,
            )
            .values(last_used_at=func.now())
            .returning(ProcessedDocument.cache_key)
        )
        return used.first() is not None

    async def touch(self, cache_key: str) -> None:
        await self.session.execute(
            update(ProcessedDocument)
            .where(ProcessedDocument.cache_key == cache_key)
            .values(last_used_at=func.now())
        )

    async def drop(self, cache_key: str) -> None:
        await self.session.execute(
            delete(ProcessedDocument).where(ProcessedDocument.cache_key == cache_key)
        )

    async def copy_chunks(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write cached chunk rows in CACHED_CHUNK_COLUMNS order."""
        driver = await driver_connection(self.session)
        await driver.copy_records_to_table(
            "processed_chunks", records=rows, columns=CACHED_CHUNK_COLUMNS
        )

    async def evict(self, max_entries: int, max_age: timedelta) -> int:
        """Drop complete entries unused for longer than max_age, then the least recently
        used beyond max_entries. Their chunks go with them (foreign key cascade)."""
        complete = ProcessedDocument.state == CacheState.COMPLETE
        expired = await self.session.execute(
            delete(ProcessedDocument).where(
                complete, ProcessedDocument.last_used_at < datetime.now(UTC) - max_age
            )
        )
        keep = (
            select(ProcessedDocument.cache_key)
            .order_by(ProcessedDocument.last_used_at.desc())
            .limit(max_entries)
        )
        surplus = await self.session.execute(
            delete(ProcessedDocument).where(complete, ProcessedDocument.cache_key.not_in(keep))
        )
        return int(getattr(expired, "rowcount", 0)) + int(getattr(surplus, "rowcount", 0))

    @staticmethod
    def _building_by(cache_key: str, builder: uuid.UUID) -> tuple[Any, ...]:
        return (
            ProcessedDocument.cache_key == cache_key,
            ProcessedDocument.builder_id == builder,
            ProcessedDocument.state == CacheState.BUILDING,
        )


async def building_under_lease(connection: AsyncConnection, builder_hex: str) -> bool:
    """Whether a cache entry is being built by `builder_hex` (32 hex digits) whose lease
    has not run out: a staging named by it is being filled (app/ingestion/bulk_load.py)."""
    return bool(
        await connection.scalar(
            select(
                select(ProcessedDocument.cache_key)
                .where(
                    ProcessedDocument.builder_id == uuid.UUID(hex=builder_hex),
                    ProcessedDocument.state == CacheState.BUILDING,
                    ProcessedDocument.lease_until > func.now(),
                )
                .exists()
            )
        )
    )
