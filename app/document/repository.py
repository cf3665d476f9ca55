"""SQL for what the document domain owns: documents, their chunks and their stored files.

Bulk rows go through binary COPY, not row-by-row INSERT.
"""

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, text
from sqlalchemy.sql import ColumnElement

from app.db.locks import advisory_lock
from app.db.models import Chunk, Document, DocumentFile, DocumentStatus
from app.db.repository import (
    Cursor,
    Page,
    RepositoryBase,
    driver_connection,
    keyset_page,
    read_parts,
    store_parts,
)

CHUNK_COLUMNS = ("document_id", "collection_id", "chunk_index", "text", "metadata", "embedding")
# A cached document's chunks into {table} (quoted): `chunks`, or a partition of it.
COPY_FROM_CACHE = """
    INSERT INTO {table}
        (document_id, collection_id, chunk_index, text, metadata, embedding, in_graph)
    SELECT :document_id, :collection_id, chunk_index, text,
           CAST(:document_metadata AS jsonb) || metadata
               || jsonb_build_object('chunk_index', chunk_index),
           embedding, :in_graph
    FROM processed_chunks
    WHERE cache_key = :cache_key AND chunk_index >= :first AND chunk_index < :stop
    ORDER BY chunk_index
"""


# Past every position a document's chunk can have (chunk_index is an integer).
ALL_POSITIONS = 2**31 - 1


@dataclass(frozen=True)
class CachedChunks:
    """A cache entry's chunks as a document's: which entry, whose, with what metadata
    besides their own, and which of them (their positions; all by default)."""

    cache_key: str
    document_id: uuid.UUID
    collection_id: str
    document_metadata: dict[str, Any]
    positions: range = range(ALL_POSITIONS)

    def part(self, positions: range) -> "CachedChunks":
        return replace(self, positions=positions)


class DocumentRepository(RepositoryBase[Document]):
    model = Document

    async def get_in_collection(
        self, collection_id: str, document_id: uuid.UUID
    ) -> Document | None:
        return await self.session.scalar(
            select(Document).where(
                Document.collection_id == collection_id, Document.id == document_id
            )
        )

    async def get_by_filename(self, collection_id: str, filename: str) -> Document | None:
        return await self.session.scalar(
            select(Document).where(
                Document.collection_id == collection_id, Document.filename == filename
            )
        )

    async def lock_by_filename(self, collection_id: str, filename: str) -> Document | None:
        """The document of that name, locked until the transaction ends, and the name with
        it: a name with no document yet is held by a transaction-scoped advisory lock, so
        two first uploads of one name take turns instead of colliding on the unique key."""
        await advisory_lock(self.session, f"document:{collection_id}/{filename}")
        return await self.session.scalar(
            select(Document)
            .where(Document.collection_id == collection_id, Document.filename == filename)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def lock_in_collection(
        self, collection_id: str, document_id: uuid.UUID
    ) -> Document | None:
        return await self.session.scalar(
            select(Document)
            .where(Document.collection_id == collection_id, Document.id == document_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def lock_version(self, document_id: uuid.UUID, generation: int) -> Document | None:
        """The document if `generation` is still its current version, locked; None when it
        was deleted or a newer version took its place (the compare of compare-and-set)."""
        return await self.session.scalar(
            select(Document)
            .where(Document.id == document_id, Document.generation == generation)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def list_page(
        self, collection_id: str, limit: int, offset: int
    ) -> tuple[Sequence[Document], int]:
        rows = await self.session.scalars(
            select(Document)
            .where(Document.collection_id == collection_id)
            .order_by(Document.created_at, Document.id)
            .limit(limit)
            .offset(offset)
        )
        total = await self.count_in_collection(collection_id)
        return rows.all(), total

    async def count_in_collection(self, collection_id: str) -> int:
        count = await self.session.scalar(
            select(func.count()).where(Document.collection_id == collection_id)
        )
        return count or 0

    async def count_by_collection(
        self, collection_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """How many documents and chunks each collection holds (one GROUP BY for the page;
        the chunks as the documents count them)."""
        rows = await self.session.execute(
            select(
                Document.collection_id,
                func.count(),
                func.coalesce(
                    func.sum(Document.chunk_count).filter(
                        Document.status == DocumentStatus.COMPLETED
                    ),
                    0,
                ),
            )
            .where(Document.collection_id.in_(collection_ids))
            .group_by(Document.collection_id)
        )
        counts = {collection_id: (0, 0) for collection_id in collection_ids}
        counts.update({collection_id: (docs, int(chunks)) for collection_id, docs, chunks in rows})
        return counts

    async def status_counts(self, collection_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """How many documents of each status each collection holds, and their bytes."""
        rows = await self.session.execute(
            select(
                Document.collection_id,
                Document.status,
                func.count(),
                func.coalesce(func.sum(Document.size_bytes), 0),
            )
            .where(Document.collection_id.in_(collection_ids))
            .group_by(Document.collection_id, Document.status)
        )
        counts: dict[str, dict[str, int]] = {collection_id: {} for collection_id in collection_ids}
        for collection_id, status, count, size in rows:
            counts[collection_id][status] = count
            counts[collection_id]["bytes"] = counts[collection_id].get("bytes", 0) + int(size)
        return counts

    async def get_many(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Document]:
        rows = await self.session.scalars(select(Document).where(Document.id.in_(document_ids)))
        return {document.id: document for document in rows}

    async def from_files(self, collection_id: str, file_ids: Sequence[str]) -> list[Document]:
        """The collection's documents made from these stored files."""
        rows = await self.session.scalars(
            select(Document).where(
                Document.collection_id == collection_id, Document.file_id.in_(file_ids)
            )
        )
        return list(rows)

    async def get_by_public_id(self, collection_id: str, public_id: str) -> Document | None:
        """The document a Files API id names in this collection: the stored file it was
        made from, or (for documents uploaded another way) `file-` and its own id's hex."""
        return await self.session.scalar(
            select(Document).where(Document.collection_id == collection_id, _named(public_id))
        )

    async def lock_by_public_id(self, collection_id: str, public_id: str) -> Document | None:
        return await self.session.scalar(
            select(Document)
            .where(Document.collection_id == collection_id, _named(public_id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def list_cursor(
        self,
        collection_id: str,
        statuses: Sequence[str] | None,
        cursor: Cursor,
        file_ids: Sequence[str] | None = None,
    ) -> Page[Document]:
        """A page of the collection's documents, of these statuses and (when given) made
        from these stored files."""
        statement = select(Document).where(Document.collection_id == collection_id)
        if statuses is not None:
            statement = statement.where(Document.status.in_(statuses))
        if file_ids is not None:
            statement = statement.where(Document.file_id.in_(file_ids))

        def anchor(public_id: str) -> Select[*tuple[Any, ...]]:
            return select(Document.created_at, Document.id).where(
                Document.collection_id == collection_id, _named(public_id)
            )

        return await keyset_page(
            self.session, statement, (Document.created_at, Document.id), cursor, anchor
        )

    async def filenames_by_collection(self, collection_ids: Sequence[str]) -> dict[str, list[str]]:
        """Filenames of each collection's documents, oldest first."""
        rows = await self.session.execute(
            select(Document.collection_id, Document.filename)
            .where(Document.collection_id.in_(collection_ids))
            .order_by(Document.created_at, Document.filename)
        )
        names: dict[str, list[str]] = {collection_id: [] for collection_id in collection_ids}
        for collection_id, filename in rows:
            names[collection_id].append(filename)
        return names


class ChunkRepository(RepositoryBase[Chunk]):
    model = Chunk

    async def copy(
        self, rows: Sequence[tuple[Any, ...]], in_graph: bool, table: str = "chunks"
    ) -> None:
        """Write chunk rows in CHUNK_COLUMNS order (metadata as JSON text), in the HNSW
        graph now or pending (app/document/index_builds.py), into `chunks` or one of its
        partitions (see `_ChunkWrite.table` in app/ingestion/service.py)."""
        driver = await driver_connection(self.session)
        await driver.copy_records_to_table(
            table,
            records=[(*row, in_graph) for row in rows],
            columns=(*CHUNK_COLUMNS, "in_graph"),
        )

    async def copy_from_cache(
        self, source: CachedChunks, in_graph: bool, table: str = "chunks"
    ) -> int:
        """Materialise a cached document's chunks for a document, inside PostgreSQL, in the
        HNSW graph now or pending (app/document/index_builds.py), into `chunks` or one of
        its partitions (as `copy`)."""
        quoted = self.session.get_bind().dialect.identifier_preparer.quote_identifier(table)
        result = await self.session.execute(
            text(COPY_FROM_CACHE.format(table=quoted)),
            {
                "document_id": source.document_id,
                "collection_id": source.collection_id,
                "document_metadata": json.dumps(source.document_metadata),
                "cache_key": source.cache_key,
                "in_graph": in_graph,
                "first": source.positions.start,
                "stop": source.positions.stop,
            },
        )
        return int(getattr(result, "rowcount", 0))

    async def replace_document_metadata(
        self,
        collection_id: str,
        document_id: uuid.UUID,
        old_keys: Sequence[str],
        metadata: dict[str, Any],
    ) -> None:
        """Swap the document's metadata in every chunk's copy: its old keys out, the new
        ones in; the keys ragstore set (page, filename, ...) stay."""
        await self.session.execute(
            text(
                "UPDATE chunks SET metadata = (metadata - CAST(:old_keys AS text[])) "
                "|| CAST(:metadata AS jsonb) "
                "WHERE collection_id = :collection_id AND document_id = :document_id"
            ),
            {
                "old_keys": list(old_keys),
                "metadata": json.dumps(metadata),
                "collection_id": collection_id,
                "document_id": document_id,
            },
        )

    async def delete_for_document(self, collection_id: str, document_id: uuid.UUID) -> None:
        # The collection names the one partition to look in.
        await self.session.execute(
            delete(Chunk).where(
                Chunk.collection_id == collection_id, Chunk.document_id == document_id
            )
        )

    async def list_page(
        self, collection_id: str, document_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[Chunk], int]:
        # The collection names the one partition to read.
        of_document = and_(Chunk.collection_id == collection_id, Chunk.document_id == document_id)
        rows = await self.session.scalars(
            select(Chunk).where(of_document).order_by(Chunk.chunk_index).limit(limit).offset(offset)
        )
        total = await self.session.scalar(select(func.count()).where(of_document))
        return rows.all(), total or 0


class DocumentFileRepository(RepositoryBase[DocumentFile]):
    model = DocumentFile

    async def store(self, document_id: uuid.UUID, path: Path) -> None:
        """Keep a file's bytes with its document (1 MiB rows, written by COPY)."""
        await self.remove(document_id)
        await store_parts(self.session, "document_files", "document_id", document_id, path)

    async def has_file(self, document_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(func.count()).where(DocumentFile.document_id == document_id)
        )
        return bool(found)

    def parts(self, document_id: uuid.UUID) -> AsyncIterator[bytes]:
        """The bytes, one row at a time: a large file never sits in memory whole."""
        return read_parts(
            self.session,
            DocumentFile.document_id,
            DocumentFile.data,
            DocumentFile.part,
            document_id,
        )

    async def remove(self, document_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(DocumentFile).where(DocumentFile.document_id == document_id)
        )


def _named(public_id: str) -> ColumnElement[bool]:
    own_id = _own_id(public_id)
    by_file = Document.file_id == public_id
    if own_id is None:
        return by_file
    return or_(by_file, and_(Document.file_id.is_(None), Document.id == own_id))


def _own_id(public_id: str) -> uuid.UUID | None:
    hex_digits = public_id.removeprefix("file-")
    if hex_digits == public_id or len(hex_digits) != 32:
        return None
    try:
        return uuid.UUID(hex=hex_digits)
    except ValueError:
        return None
