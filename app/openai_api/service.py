"""OpenAI's Files and Vector Stores operations, as calls on ragstore's own services.

Nothing here stores, parses, embeds or ranks: a vector store is created by the
collection service, a file added by the job service (the one accept-upload
path, through the cache, so a file in several stores is embedded once), a
search run by the search service. This module only translates.
"""

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.collection.repository import CollectionRepository
from app.collection.service import CollectionNotFound, create_collection, get_collection
from app.core.config import Settings
from app.core.errors import NotFound
from app.db.models import Collection, Document, DocumentStatus, FileBatch
from app.db.repository import Cursor, Page
from app.document.repository import DocumentRepository
from app.document.service import delete_document, list_chunks, update_document_metadata
from app.files.repository import FileBatchRepository
from app.files.service import get_file
from app.ingestion.prepared import ProcessingOptions
from app.jobs.service import JobService
from app.openai_api.schemas import (
    FILE_FILTERS,
    ChunkingStrategy,
    FileBatchCreate,
    FileBatchObject,
    SearchResultObject,
    TextContent,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreObject,
    VectorStoreSearch,
    VectorStoreUpdate,
    attributes_of,
    file_counts,
    public_id,
)
from app.search.service import SearchQuery, SearchService

VECTOR_STORE_ID_PREFIX = "vs_"
FILE_BATCH_ID_PREFIX = "vsfb_"
UNFINISHED = (DocumentStatus.PENDING, DocumentStatus.PROCESSING)
# A file's content page holds every chunk (OpenAI's has no paging parameters either).
MAX_CHUNKS = 1_000_000


class VectorStoreFileNotFound(NotFound):
    pass


async def describe_stores(
    session: AsyncSession, collections: Sequence[Collection]
) -> list[VectorStoreObject]:
    counts = await DocumentRepository(session).status_counts([c.id for c in collections])
    return [VectorStoreObject.of(c, counts[c.id]) for c in collections]


async def describe_store(session: AsyncSession, vector_store_id: str) -> VectorStoreObject:
    return (await describe_stores(session, [await get_collection(session, vector_store_id)]))[0]


async def create_store(session: AsyncSession, body: VectorStoreCreate) -> Collection:
    """The collection behind a new vector store (its files are added by add_file)."""
    store_id = f"{VECTOR_STORE_ID_PREFIX}{uuid.uuid4().hex}"
    metadata: dict[str, object] = dict(body.metadata or {})
    summary = await create_collection(session, body.name or "", store_id, metadata)
    collection = summary.collection
    collection.description = body.description
    collection.expires_after_days = body.expires_after.days if body.expires_after else None
    await session.flush()
    # Load what the server set (updated_at) now: async sessions cannot load it later.
    await session.refresh(collection)
    return collection


async def update_store(
    session: AsyncSession, vector_store_id: str, body: VectorStoreUpdate
) -> VectorStoreObject:
    collection = await CollectionRepository(session).lock_for_change(vector_store_id)
    if collection is None:
        raise CollectionNotFound(f"no such vector store: {vector_store_id!r}")
    if body.name is not None:
        collection.name = body.name
    if body.metadata is not None:
        collection.metadata_ = dict(body.metadata)
    if "expires_after" in body.model_fields_set:
        collection.expires_after_days = body.expires_after.days if body.expires_after else None
    await session.flush()
    await session.refresh(collection)
    return (await describe_stores(session, [collection]))[0]


def processing_options(
    settings: Settings, strategy: ChunkingStrategy | None, attributes: Mapping[str, object] | None
) -> ProcessingOptions:
    """Chunk sizes from OpenAI's chunking strategy (tokens, `auto` when none is given)."""
    size, overlap = (strategy or ChunkingStrategy(type="auto")).characters()
    return ProcessingOptions.from_request(settings, size, overlap, dict(attributes or {}))


async def add_file(
    session: AsyncSession,
    jobs: JobService,
    vector_store_id: str,
    body: VectorStoreFileCreate,
) -> Document:
    """Queue a stored file's processing into the store: its document, `in_progress` (or
    `failed` at once if the file cannot be processed)."""
    await get_collection(session, vector_store_id)
    stored = await get_file(session, body.file_id)
    options = processing_options(jobs.settings, body.chunking_strategy, body.attributes)
    accepted = await jobs.accept_file(stored, vector_store_id, options)
    return accepted.result.document


async def find_file(session: AsyncSession, vector_store_id: str, file_id: str) -> Document:
    await get_collection(session, vector_store_id)
    document = await DocumentRepository(session).get_by_public_id(vector_store_id, file_id)
    if document is None:
        raise VectorStoreFileNotFound(f"no file {file_id!r} in vector store {vector_store_id!r}")
    return document


async def list_files(
    session: AsyncSession, vector_store_id: str, status: str | None, cursor: Cursor
) -> Page[Document]:
    await get_collection(session, vector_store_id)
    statuses = None if status is None else FILE_FILTERS[status]
    return await DocumentRepository(session).list_cursor(vector_store_id, statuses, cursor)


async def update_attributes(
    session: AsyncSession,
    settings: Settings,
    vector_store_id: str,
    file_id: str,
    attributes: dict[str, object],
) -> Document:
    """New attributes: the document's metadata and its chunks' copy, embedding nothing."""
    document = await find_file(session, vector_store_id, file_id)
    return await update_document_metadata(
        session, vector_store_id, document.id, dict(attributes), settings
    )


async def file_texts(session: AsyncSession, vector_store_id: str, file_id: str) -> list[str]:
    """The file's text as it was chunked, chunk by chunk in order (what the model sees)."""
    document = await find_file(session, vector_store_id, file_id)
    chunks, _ = await list_chunks(session, vector_store_id, document.id, MAX_CHUNKS, 0)
    return [chunk.text for chunk in chunks]


async def remove_file(session: AsyncSession, vector_store_id: str, file_id: str) -> None:
    """Take the file out of this store (its document and chunks); the file stays."""
    await delete_document(session, await find_file(session, vector_store_id, file_id))


async def search(
    session: AsyncSession, searcher: SearchService, vector_store_id: str, body: VectorStoreSearch
) -> list[SearchResultObject]:
    """Hybrid search (its score is 0-1, as OpenAI's), above `score_threshold`."""
    threshold = body.ranking_options.score_threshold if body.ranking_options else None
    query = SearchQuery(
        collection_id=vector_store_id,
        text=body.text(),
        k=body.max_num_results,
        mode="hybrid",
        filters=body.filters,
        min_score=threshold or None,
    )
    hits = await searcher.search(session, query)
    documents = await DocumentRepository(session).get_many([hit.document_id for hit in hits])
    return [
        SearchResultObject(
            file_id=public_id(documents[hit.document_id]),
            filename=hit.filename,
            score=hit.score,
            attributes=attributes_of(hit.metadata),
            content=[TextContent(text=hit.text)],
        )
        for hit in hits
        if hit.document_id in documents
    ]


class FileBatchNotFound(NotFound):
    pass


async def add_batch(
    session: AsyncSession, jobs: JobService, vector_store_id: str, body: FileBatchCreate
) -> FileBatchObject:
    """Record the batch, then queue each of its files as add_file does. Every file is
    checked first: an unknown one refuses the batch (404) before anything is queued."""
    await get_collection(session, vector_store_id)
    entries = body.each()
    for entry in entries:
        await get_file(session, entry.file_id)
    batch_id = f"{FILE_BATCH_ID_PREFIX}{uuid.uuid4().hex}"
    file_ids = list(dict.fromkeys(entry.file_id for entry in entries))
    await FileBatchRepository(session).create_with_files(batch_id, vector_store_id, file_ids)
    # Committed first: a client polling the batch finds it while its files are queued.
    await session.commit()
    for entry in entries:
        await add_file(session, jobs, vector_store_id, VectorStoreFileCreate(**entry.model_dump()))
    return await describe_batch(session, vector_store_id, batch_id)


async def _batch(session: AsyncSession, vector_store_id: str, batch_id: str) -> FileBatch:
    await get_collection(session, vector_store_id)
    batch = await FileBatchRepository(session).get_in_collection(vector_store_id, batch_id)
    if batch is None:
        raise FileBatchNotFound(f"no file batch {batch_id!r} in vector store {vector_store_id!r}")
    return batch


async def describe_batch(
    session: AsyncSession, vector_store_id: str, batch_id: str
) -> FileBatchObject:
    """The batch, counted from the documents its files made in the store."""
    batch = await _batch(session, vector_store_id, batch_id)
    members = await FileBatchRepository(session).files_of(batch.id)
    documents = await DocumentRepository(session).from_files(
        vector_store_id, [m.file_id for m in members if not m.cancelled]
    )
    cancelled = sum(m.cancelled for m in members)
    by_status = Counter(document.status for document in documents)
    return FileBatchObject.of(batch, file_counts(by_status, cancelled))


async def cancel_batch(
    session: AsyncSession, vector_store_id: str, batch_id: str
) -> FileBatchObject:
    """Stop the batch's files that are not processed yet: their pending documents are
    deleted (their jobs end `cancelled`) and they count as cancelled; the others stay."""
    batch = await _batch(session, vector_store_id, batch_id)
    batches = FileBatchRepository(session)
    members = await batches.files_of(batch.id)
    documents = DocumentRepository(session)
    stopped = []
    for document in await documents.from_files(vector_store_id, [m.file_id for m in members]):
        locked = await documents.lock_in_collection(vector_store_id, document.id)
        if locked is not None and locked.status in UNFINISHED:
            await delete_document(session, locked)
            stopped.append(locked.file_id or "")
    await batches.mark_cancelled(batch.id, stopped)
    await session.flush()
    return await describe_batch(session, vector_store_id, batch_id)


async def list_batch_files(
    session: AsyncSession, vector_store_id: str, batch_id: str, status: str | None, cursor: Cursor
) -> Page[Document]:
    batch = await _batch(session, vector_store_id, batch_id)
    members = await FileBatchRepository(session).files_of(batch.id)
    statuses = None if status is None else FILE_FILTERS[status]
    return await DocumentRepository(session).list_cursor(
        vector_store_id, statuses, cursor, file_ids=[m.file_id for m in members]
    )
