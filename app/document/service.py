"""Documents of a collection: read, list, delete (ingestion lives in app/ingestion)."""

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.collection.service import get_collection
from app.core.errors import NotFound
from app.db.models import Chunk, Document
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
    return await ChunkRepository(session).list_page(document_id, limit, offset)
