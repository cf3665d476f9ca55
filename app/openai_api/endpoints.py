"""The OpenAI-compatible face: Files and Vector Stores under /v1, for the official SDK.

Routes only translate (app/openai_api/service.py); errors have OpenAI's body
(`app.core.errors.error_content`), and `OpenAI-Beta` headers are ignored.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse

from app.collection.service import delete_collection, list_collections_by_creation
from app.db.dependencies import DatabaseDep, ReadSessionDep, SessionDep
from app.db.repository import Cursor
from app.files import service as files
from app.ingestion.upload import UploadRequest, received_upload
from app.jobs.dependencies import JobsDep
from app.openai_api import service
from app.openai_api.schemas import (
    OPENAI_ERRORS,
    Deleted,
    FileBatchCreate,
    FileBatchObject,
    FileContentPage,
    FileObject,
    ListPage,
    PageQuery,
    SearchResultsPage,
    TextContent,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreFileObject,
    VectorStoreFileUpdate,
    VectorStoreObject,
    VectorStoreSearch,
    VectorStoreUpdate,
)
from app.search.dependencies import SearchDep
from app.web.dependencies import SettingsDep

router = APIRouter(
    prefix="/v1", tags=["OpenAI-compatible: files and vector stores"], responses=OPENAI_ERRORS
)

Purpose = Literal[
    "assistants",
    "assistants_output",
    "batch",
    "batch_output",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
]
PageDep = Annotated[PageQuery, Query()]


# --- Files -------------------------------------------------------------------------------


@router.post("/files", summary="Upload a file")
async def create_file(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    purpose: Annotated[Purpose, Form()],
) -> FileObject:
    """Store a file as sent (any purpose); add it to vector stores to search it."""
    upload = UploadRequest(source=file.file, filename=file.filename)
    async with received_upload(upload, settings.max_upload_bytes) as stored:
        return FileObject.of(await files.store_file(session, stored, purpose))


@router.get("/files", summary="List files")
async def list_files(
    session: ReadSessionDep,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> ListPage:
    """Files, newest first unless `order=asc`, optionally of one purpose."""
    page = await files.list_files(
        session, purpose, Cursor(limit=limit, descending=order == "desc", after=after)
    )
    return ListPage.of([FileObject.of(f) for f in page.items], page.has_more)


@router.get("/files/{file_id}", summary="Retrieve a file")
async def retrieve_file(file_id: str, session: ReadSessionDep) -> FileObject:
    """A stored file's description."""
    return FileObject.of(await files.get_file(session, file_id))


@router.delete("/files/{file_id}", summary="Delete a file, and remove it from every vector store")
async def delete_file(file_id: str, session: SessionDep) -> Deleted:
    """The file, and every vector store file made from it, in every store."""
    await files.delete_file(session, file_id)
    return Deleted(id=file_id, object="file")


@router.get("/files/{file_id}/content", summary="The file's bytes, as uploaded")
async def file_content(
    file_id: str, session: ReadSessionDep, database: DatabaseDep
) -> StreamingResponse:
    """The file's bytes, exactly as uploaded."""
    stored = await files.get_file(session, file_id)

    async def stream() -> AsyncIterator[bytes]:
        # Its own session: the request's is closed before the body is sent.
        async with database.read_session() as reading:
            async for block in files.file_content(reading, stored.id):
                yield block

    return StreamingResponse(
        stream(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(stored.size_bytes)},
    )


# --- Vector stores -----------------------------------------------------------------------


@router.post("/vector_stores", summary="Create a vector store")
async def create_vector_store(
    body: VectorStoreCreate, session: SessionDep, jobs: JobsDep
) -> VectorStoreObject:
    """A new vector store (a collection); its `file_ids` are processed in the background."""
    collection = await service.create_store(session, body)
    # Committed before its files are queued: a worker must find the collection.
    await session.commit()
    for file_id in body.file_ids:
        await service.add_file(
            session,
            jobs,
            collection.id,
            VectorStoreFileCreate(file_id=file_id, chunking_strategy=body.chunking_strategy),
        )
    return await service.describe_store(session, collection.id)


@router.get("/vector_stores", summary="List vector stores")
async def list_vector_stores(session: ReadSessionDep, page: PageDep) -> ListPage:
    """Vector stores with their file counts, newest first unless `order=asc`."""
    found = await list_collections_by_creation(session, page.cursor())
    return ListPage.of(await service.describe_stores(session, found.items), found.has_more)


@router.get("/vector_stores/{vector_store_id}", summary="Retrieve a vector store")
async def retrieve_vector_store(vector_store_id: str, session: ReadSessionDep) -> VectorStoreObject:
    """A vector store with its file counts and usage."""
    return await service.describe_store(session, vector_store_id)


@router.post("/vector_stores/{vector_store_id}", summary="Modify a vector store")
async def modify_vector_store(
    vector_store_id: str, body: VectorStoreUpdate, session: SessionDep
) -> VectorStoreObject:
    """Rename a vector store, replace its metadata or change its expiry."""
    return await service.update_store(session, vector_store_id, body)


@router.delete("/vector_stores/{vector_store_id}", summary="Delete a vector store")
async def delete_vector_store(vector_store_id: str, session: SessionDep) -> Deleted:
    """The vector store and its documents; the files themselves stay."""
    await delete_collection(session, vector_store_id)
    return Deleted(id=vector_store_id, object="vector_store.deleted")


# --- Vector store files ------------------------------------------------------------------


@router.post(
    "/vector_stores/{vector_store_id}/files",
    summary="Add a file to a vector store (processed in the background)",
)
async def create_vector_store_file(
    vector_store_id: str, body: VectorStoreFileCreate, session: SessionDep, jobs: JobsDep
) -> VectorStoreFileObject:
    """Queue a stored file's processing into the store (`in_progress` until done)."""
    document = await service.add_file(session, jobs, vector_store_id, body)
    return VectorStoreFileObject.of(document)


@router.get("/vector_stores/{vector_store_id}/files", summary="List a vector store's files")
async def list_vector_store_files(
    vector_store_id: str,
    session: ReadSessionDep,
    page: PageDep,
    filter: Literal["in_progress", "completed", "failed", "cancelled"] | None = None,
) -> ListPage:
    """The store's files, with their status; `filter` keeps one status."""
    found = await service.list_files(session, vector_store_id, filter, page.cursor())
    return ListPage.of([VectorStoreFileObject.of(d) for d in found.items], found.has_more)


@router.get(
    "/vector_stores/{vector_store_id}/files/{file_id}", summary="Retrieve a vector store file"
)
async def retrieve_vector_store_file(
    vector_store_id: str, file_id: str, session: ReadSessionDep
) -> VectorStoreFileObject:
    """A vector store file's status, last error and attributes."""
    return VectorStoreFileObject.of(await service.find_file(session, vector_store_id, file_id))


@router.post(
    "/vector_stores/{vector_store_id}/files/{file_id}",
    summary="Update a vector store file's attributes (filters see them at once)",
)
async def update_vector_store_file(
    vector_store_id: str,
    file_id: str,
    body: VectorStoreFileUpdate,
    session: SessionDep,
    settings: SettingsDep,
) -> VectorStoreFileObject:
    """New attributes: the document's metadata and its chunks' copy."""
    document = await service.update_attributes(
        session, settings, vector_store_id, file_id, dict(body.attributes)
    )
    return VectorStoreFileObject.of(document)


@router.delete(
    "/vector_stores/{vector_store_id}/files/{file_id}",
    summary="Remove a file from a vector store (the file itself stays)",
)
async def delete_vector_store_file(
    vector_store_id: str, file_id: str, session: SessionDep
) -> Deleted:
    """Remove the file's document and chunks from this store only."""
    await service.remove_file(session, vector_store_id, file_id)
    return Deleted(id=file_id, object="vector_store.file.deleted")


@router.get(
    "/vector_stores/{vector_store_id}/files/{file_id}/content",
    summary="A vector store file's parsed text, chunk by chunk",
)
async def vector_store_file_content(
    vector_store_id: str, file_id: str, session: ReadSessionDep
) -> FileContentPage:
    """The file's text as it was chunked, chunk by chunk."""
    texts = await service.file_texts(session, vector_store_id, file_id)
    return FileContentPage(data=[TextContent(text=text) for text in texts])


# --- File batches ------------------------------------------------------------------------


@router.post(
    "/vector_stores/{vector_store_id}/file_batches",
    summary="Add several files to a vector store at once",
)
async def create_file_batch(
    vector_store_id: str, body: FileBatchCreate, session: SessionDep, jobs: JobsDep
) -> FileBatchObject:
    """Queue every file of the batch (`file_ids`, or `files` with attributes of their own)."""
    return await service.add_batch(session, jobs, vector_store_id, body)


@router.get(
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}", summary="Retrieve a file batch"
)
async def retrieve_file_batch(
    vector_store_id: str, batch_id: str, session: ReadSessionDep
) -> FileBatchObject:
    """The batch's status and counts, from its files' documents in the store."""
    return await service.describe_batch(session, vector_store_id, batch_id)


@router.post(
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
    summary="Cancel a file batch",
)
async def cancel_file_batch(
    vector_store_id: str, batch_id: str, session: SessionDep
) -> FileBatchObject:
    """Stop the batch's files not processed yet; the processed ones stay."""
    return await service.cancel_batch(session, vector_store_id, batch_id)


@router.get(
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
    summary="List a file batch's files",
)
async def list_file_batch_files(
    vector_store_id: str,
    batch_id: str,
    session: ReadSessionDep,
    page: PageDep,
    filter: Literal["in_progress", "completed", "failed", "cancelled"] | None = None,
) -> ListPage:
    """The batch's files in the store, with their status; `filter` keeps one status."""
    found = await service.list_batch_files(
        session, vector_store_id, batch_id, filter, page.cursor()
    )
    return ListPage.of([VectorStoreFileObject.of(d) for d in found.items], found.has_more)


# --- Search ------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/search", summary="Search a vector store")
async def search_vector_store(
    vector_store_id: str, body: VectorStoreSearch, session: ReadSessionDep, searcher: SearchDep
) -> SearchResultsPage:
    """Hybrid search (score 0-1) with filters and a score threshold."""
    results = await service.search(session, searcher, vector_store_id, body)
    return SearchResultsPage(search_query=body.query, data=results)
