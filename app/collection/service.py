"""Collections: named sets of documents (the original app's sessions)."""

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.collection.repository import CollectionRepository
from app.core.errors import Conflict, NotFound
from app.db.models import Collection
from app.db.types import check_metadata


async def create_collection(
    session: AsyncSession, name: str, collection_id: str | None, metadata: dict[str, object]
) -> Collection:
    check_metadata(metadata)
    collection_id = collection_id or str(uuid.uuid4())
    created = await CollectionRepository(session).create_unless_taken(collection_id, name, metadata)
    if created is None:
        raise Conflict(f"collection {collection_id!r} already exists")
    return created


async def get_collection(session: AsyncSession, collection_id: str) -> Collection:
    collection = await CollectionRepository(session).get_one_or_none(collection_id)
    if collection is None:
        raise NotFound(f"collection {collection_id!r} not found")
    return collection


async def get_session_collection(session: AsyncSession, session_id: str) -> Collection:
    """The collection behind an original-app session id, with that app's 404 message."""
    try:
        return await get_collection(session, session_id)
    except NotFound as exc:
        raise NotFound(f"Session not found: {session_id}") from exc


async def list_collections(
    session: AsyncSession, limit: int, offset: int
) -> tuple[Sequence[Collection], int, dict[str, list[str]]]:
    """A page of collections, the total, and each listed collection's filenames."""
    repository = CollectionRepository(session)
    collections, total = await repository.list_page(limit, offset)
    filenames = await repository.document_filenames([c.id for c in collections])
    return collections, total, filenames


async def document_filenames(session: AsyncSession, collection_id: str) -> list[str]:
    names = await CollectionRepository(session).document_filenames([collection_id])
    return names[collection_id]


async def delete_collection(session: AsyncSession, collection_id: str) -> None:
    """Delete the collection; its documents and chunks go with it (foreign keys cascade)."""
    collection = await get_collection(session, collection_id)
    await CollectionRepository(session).delete(collection)
