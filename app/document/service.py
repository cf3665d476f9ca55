"""Documents of a collection: read, list, delete (ingestion lives in app/ingestion)."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.collection.repository import CollectionRepository
from app.collection.service import CollectionNotFound, get_collection
from app.core.config import Settings
from app.core.errors import Conflict, NotFound
from app.db.models import Chunk, Document, DocumentStatus
from app.document.metadata import CHUNK_KEYS, check_copied_metadata, check_document_metadata
from app.document.repository import ChunkRepository, DocumentRepository


class DocumentNotFound(NotFound):
    pass


async def get_document(
    session: AsyncSession, collection_id: str, document_id: uuid.UUID
) -> Document:
    await get_collection(session, collection_id)
    document = await DocumentRepository(session).get_in_collection(collection_id, document_id)
    if document is None:
        raise DocumentNotFound(f"document {document_id} not found in collection {collection_id!r}")
    return document


async def list_documents(
    session: AsyncSession, collection_id: str, limit: int, offset: int
) -> tuple[Sequence[Document], int]:
    await get_collection(session, collection_id)
    return await DocumentRepository(session).list_page(collection_id, limit, offset)


async def update_document_metadata(
    session: AsyncSession,
    collection_id: str,
    document_id: uuid.UUID,
    metadata: dict[str, Any],
    settings: Settings,
) -> Document:
    """Replace the document's metadata and its chunks' copy, in one transaction; nothing is
    embedded again. Locked in the writers' order (collection, then document)."""
    check_document_metadata(metadata, settings.max_metadata_bytes)
    if await CollectionRepository(session).lock_for_share(collection_id) is None:
        raise CollectionNotFound(f"collection {collection_id!r} not found")
    document = await DocumentRepository(session).lock_in_collection(collection_id, document_id)
    if document is None:
        raise DocumentNotFound(f"document {document_id} not found in collection {collection_id!r}")
    if document.status in (DocumentStatus.PENDING, DocumentStatus.PROCESSING):
        raise Conflict(
            f"document {document_id} is {document.status}: change its metadata once it is "
            "completed or failed"
        )
    check_copied_metadata(metadata, document.chunk_count, settings.max_copied_metadata_mb)
    await replace_metadata(session, document, metadata)
    return document


async def replace_metadata(
    session: AsyncSession, document: Document, metadata: dict[str, Any]
) -> None:
    """The document (locked by the caller) and its chunks carry `metadata` from now on."""
    old_keys = [key for key in document.metadata_ if key not in CHUNK_KEYS]
    await ChunkRepository(session).replace_document_metadata(
        document.collection_id, document.id, old_keys, metadata
    )
    document.metadata_ = metadata
    await session.flush()
    # Load server-set columns (updated_at) now: the result outlives the session.
    await session.refresh(document)


async def delete_document(session: AsyncSession, document: Document) -> None:
    """Delete the document; its chunks and vectors go with it (foreign key cascade), and
    its unfinished jobs end `cancelled` (a trigger). A delete that lost a race is a 404."""
    if not await DocumentRepository(session).delete(document):
        raise DocumentNotFound(f"document {document.id} was deleted meanwhile")


async def delete_document_by_filename(
    session: AsyncSession, collection_id: str, filename: str
) -> None:
    await get_collection(session, collection_id)
    document = await DocumentRepository(session).get_by_filename(collection_id, filename)
    if document is None:
        raise DocumentNotFound(f"document {filename!r} not found in collection {collection_id!r}")
    await delete_document(session, document)


async def document_filenames(
    session: AsyncSession, collection_ids: Sequence[str]
) -> dict[str, list[str]]:
    """The names of each collection's documents, oldest first."""
    return await DocumentRepository(session).filenames_by_collection(collection_ids)


async def list_chunks(
    session: AsyncSession, collection_id: str, document_id: uuid.UUID, limit: int, offset: int
) -> tuple[Sequence[Chunk], int]:
    await get_document(session, collection_id, document_id)
    return await ChunkRepository(session).list_page(collection_id, document_id, limit, offset)
