"""Collections: named sets of documents (an OpenAI vector store), with their document counts.

The counts are asked of the document domain, which owns the documents table.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.collection.repository import CollectionRepository
from app.core.errors import Conflict, NotFound
from app.db.models import Collection
from app.db.repository import Cursor, Page
from app.db.types import check_metadata
from app.document.partitions import ChunkPartitionRepository, Indexing
from app.document.repository import DocumentRepository


class CollectionNotFound(NotFound):
    pass


@dataclass(frozen=True)
class CollectionSummary:
    collection: Collection
    document_count: int
    chunk_count: int


async def create_collection(
    session: AsyncSession, name: str, collection_id: str | None, metadata: dict[str, object]
) -> CollectionSummary:
    check_metadata(metadata)
    collection_id = collection_id or str(uuid.uuid4())
    created = await CollectionRepository(session).create_unless_taken(collection_id, name, metadata)
    if created is None:
        raise Conflict(f"collection {collection_id!r} already exists")
    return CollectionSummary(created, document_count=0, chunk_count=0)


async def get_collection(session: AsyncSession, collection_id: str) -> Collection:
    collection = await CollectionRepository(session).get_one_or_none(collection_id)
    if collection is None:
        raise CollectionNotFound(f"collection {collection_id!r} not found")
    return collection


async def describe_collection(session: AsyncSession, collection_id: str) -> CollectionSummary:
    """The collection with its document count."""
    collection = await get_collection(session, collection_id)
    return (await _summaries(session, [collection]))[0]


async def list_collections(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[CollectionSummary], int]:
    """A page of collections, oldest first, with their document counts; and the total."""
    collections, total = await CollectionRepository(session).list_page(limit, offset)
    return await _summaries(session, collections), total


async def indexing(session: AsyncSession, collection_ids: list[str]) -> dict[str, Indexing]:
    """How far each collection's HNSW graph and BM25 postings have caught up with its
    chunks, asked of the document domain, which owns them."""
    return await ChunkPartitionRepository(session).indexing(collection_ids)


async def list_collections_by_creation(session: AsyncSession, cursor: Cursor) -> Page[Collection]:
    """A page of collections by creation time, from a cursor (OpenAI's list parameters)."""
    return await CollectionRepository(session).list_cursor(cursor)


async def update_collection(
    session: AsyncSession,
    collection_id: str,
    name: str | None,
    metadata: dict[str, object] | None,
) -> CollectionSummary:
    """Rename the collection and/or replace its metadata (what is not given stays)."""
    if metadata is not None:
        check_metadata(metadata)
    collection = await CollectionRepository(session).lock_for_change(collection_id)
    if collection is None:
        raise CollectionNotFound(f"collection {collection_id!r} not found")
    if name is not None:
        collection.name = name
    if metadata is not None:
        collection.metadata_ = metadata
    await session.flush()
    await session.refresh(collection)
    return (await _summaries(session, [collection]))[0]


async def delete_collection(session: AsyncSession, collection_id: str) -> None:
    """Delete the collection; its documents and chunks go with it (foreign keys cascade)."""
    collection = await get_collection(session, collection_id)
    if not await CollectionRepository(session).delete(collection):
        raise CollectionNotFound(f"collection {collection_id!r} not found")


async def _summaries(
    session: AsyncSession, collections: Sequence[Collection]
) -> list[CollectionSummary]:
    counts = await DocumentRepository(session).count_by_collection([c.id for c in collections])
    return [CollectionSummary(c, *counts[c.id]) for c in collections]
