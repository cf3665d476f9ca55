"""Seeding benchmark databases through ragstore's own repositories, never by hand-written
INSERTs: a schema change then breaks a benchmark loudly instead of silently."""

import uuid
from collections.abc import Sequence
from typing import Any

from app.collection.repository import CollectionRepository
from app.db.database import Database
from app.db.models import Document, DocumentStatus
from app.document.repository import ChunkRepository, DocumentRepository


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


async def copy_chunks(database: Database, rows: Sequence[tuple[Any, ...]]) -> None:
    """Chunk rows (in the repository's CHUNK_COLUMNS order) written by binary COPY."""
    async with database.session() as session:
        await ChunkRepository(session).copy(rows)
