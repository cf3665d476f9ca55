from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.collection import service
from app.collection.schemas import (
    CollectionCreate,
    CollectionIndexing,
    CollectionPage,
    CollectionRead,
    CollectionUpdate,
)
from app.collection.service import CollectionSummary
from app.db.dependencies import ReadSessionDep, SessionDep
from app.document.partitions import Indexing
from app.web.dependencies import Offset
from app.web.errors import INVALID_REQUEST, UNREADABLE_BODY, error_responses

router = APIRouter(prefix="/api/collections", tags=["collections"], responses=INVALID_REQUEST)
_NOT_FOUND = error_responses({404: "No such collection"})


async def _read_all(
    session: AsyncSession, summaries: list[CollectionSummary]
) -> list[CollectionRead]:
    states = await service.indexing(session, [s.collection.id for s in summaries])
    return [_read(summary, states[summary.collection.id]) for summary in summaries]


async def _read_one(session: AsyncSession, summary: CollectionSummary) -> CollectionRead:
    return (await _read_all(session, [summary]))[0]


def _read(summary: CollectionSummary, indexing: Indexing) -> CollectionRead:
    collection = summary.collection
    return CollectionRead(
        id=collection.id,
        name=collection.name,
        metadata=collection.metadata_,
        document_count=summary.document_count,
        chunk_count=summary.chunk_count,
        indexing=CollectionIndexing(
            complete=indexing.complete,
            chunks_outside_graph=indexing.chunks_outside_graph,
            keyword_index_deferred=indexing.keyword_index_deferred,
        ),
        created_at=collection.created_at,
        updated_at=collection.updated_at,
    )


@router.post(
    "",
    summary="Create a collection",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses({400: UNREADABLE_BODY, 409: "A collection with this id exists"}),
)
async def create_collection(body: CollectionCreate, session: SessionDep) -> CollectionRead:
    """A named set of documents that search and chat run over (an OpenAI vector store)."""
    created = await service.create_collection(session, body.name, body.id, body.metadata)
    return await _read_one(session, created)


@router.get("", summary="List collections")
async def list_collections(
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> CollectionPage:
    """Collections, oldest first, with their document counts."""
    summaries, total = await service.list_collections(session, limit, offset)
    return CollectionPage(
        data=await _read_all(session, summaries), total=total, limit=limit, offset=offset
    )


@router.get("/{collection_id}", summary="Get a collection", responses=_NOT_FOUND)
async def get_collection(collection_id: str, session: ReadSessionDep) -> CollectionRead:
    """One collection with its document count."""
    return await _read_one(session, await service.describe_collection(session, collection_id))


@router.patch(
    "/{collection_id}",
    summary="Rename a collection or change its metadata",
    responses={**_NOT_FOUND, **error_responses({400: UNREADABLE_BODY})},
)
async def update_collection(
    collection_id: str, body: CollectionUpdate, session: SessionDep
) -> CollectionRead:
    """Fields left out stay as they are; `metadata`, when given, replaces the old."""
    updated = await service.update_collection(session, collection_id, body.name, body.metadata)
    return await _read_one(session, updated)


@router.delete(
    "/{collection_id}",
    summary="Delete a collection with its documents and chunks",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
)
async def delete_collection(collection_id: str, session: SessionDep) -> None:
    """Everything in the collection is deleted: documents, chunks, vectors."""
    await service.delete_collection(session, collection_id)
