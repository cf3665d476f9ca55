"""Seeding benchmark databases through ragstore's own repositories, never by hand-written
INSERTs: a schema change then breaks a benchmark loudly instead of silently."""

import uuid
from collections.abc import Sequence
from typing import Any

from app.collection.repository import CollectionRepository
from app.db.database import Database
from app.db.models import Document, DocumentStatus
from app.document.partitions import ChunkPartitionRepository
from app.document.repository import CHUNK_COLUMNS, ChunkRepository, DocumentRepository


async def seed_documents(
    database: Database, collection_id: str, filenames: Sequence[str]
) -> list[uuid.UUID]:
    """A collection holding completed documents of these names (their chunks come later)."""
    async with database.session() as session:
        await CollectionRepository(session).create_if_absent(collection_id, collection_id)
        documents = DocumentRepository(session)
        created = [
            await documents.create(
                Document(
                    collection_id=collection_id,
                    filename=filename,
                    content_type="text/plain",
                    size_bytes=0,
                    content_sha256="",
                    status=DocumentStatus.COMPLETED,
                    chunk_size=500,
                    chunk_overlap=50,
                    cache_key="",
                ),
                flush=False,
            )
            for filename in filenames
        ]
        await session.flush()
        return [document.id for document in created]


async def copy_chunks(
    database: Database, rows: Sequence[tuple[Any, ...]], vector_index: bool = True
) -> None:
    """Chunk rows (in the repository's CHUNK_COLUMNS order) written by binary COPY, into
    their collections' partitions (made first, as the service makes them); a partition
    without a vector index gets one over its rows, as a first upload does, unless
    `vector_index` is False (the caller builds it)."""
    collections = sorted({row[CHUNK_COLUMNS.index("collection_id")] for row in rows})
    async with database.session() as session:
        for collection_id in collections:
            await ChunkPartitionRepository(session).create_if_missing(collection_id)
    async with database.session() as session:
        partitions = ChunkPartitionRepository(session)
        first_fills = [
            c for c in collections if vector_index and await partitions.claim_first_fill(c)
        ]
        await ChunkRepository(session).copy(rows, in_graph=True)
        for collection_id in first_fills:
            await partitions.build_vector_index(collection_id)
