import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.db.dependencies import ReadSessionDep, SessionDep
from app.document import service
from app.document.schemas import ChunkPage, ChunkRead, DocumentPage, DocumentRead, DocumentUploaded
from app.ingestion.dependencies import UPLOAD_ERRORS, UploadFormDep
from app.jobs.dependencies import JobsDep
from app.web.dependencies import AsyncRequestedDep, Offset
from app.web.errors import INVALID_REQUEST, error_responses

router = APIRouter(
    prefix="/api/collections/{collection_id}/documents",
    tags=["documents"],
    responses=INVALID_REQUEST,
)
_COLLECTION_NOT_FOUND = error_responses({404: "No such collection"})
_NOT_FOUND = error_responses({404: "No such collection or document"})

Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post(
    "",
    summary="Upload a document into a collection",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": DocumentUploaded,
            "description": "The same content was already processed in this collection",
        },
        202: {
            "model": DocumentUploaded,
            "description": "Stored and queued (asynchronous upload): follow job_id",
        },
        **_COLLECTION_NOT_FOUND,
        **UPLOAD_ERRORS,
    },
)
async def upload_document(
    collection_id: str,
    upload: UploadFormDep,
    jobs: JobsDep,
    asynchronous: AsyncRequestedDep,
    response: Response,
) -> DocumentUploaded:
    """Parse, chunk and embed the file; it is searchable when this returns. With
    `?wait=false` (or `Prefer: respond-async`) the answer is 202 with a job to follow."""
    accepted = await jobs.accept(
        upload, collection_id, create_collection=False, asynchronous=asynchronous
    )
    if accepted.job is not None:
        response.status_code = status.HTTP_202_ACCEPTED
    elif accepted.result.already_processed:
        response.status_code = status.HTTP_200_OK
    document = DocumentRead.model_validate(accepted.result.document)
    return DocumentUploaded(
        **document.model_dump(),
        already_processed=accepted.result.already_processed,
        job_id=accepted.job.id if accepted.job is not None else None,
    )


@router.get("", summary="List a collection's documents", responses=_COLLECTION_NOT_FOUND)
async def list_documents(
    collection_id: str, session: ReadSessionDep, limit: Limit = 100, offset: Offset = 0
) -> DocumentPage:
    """Documents in upload order, with their processing status."""
    documents, total = await service.list_documents(session, collection_id, limit, offset)
    return DocumentPage(
        data=[DocumentRead.model_validate(d) for d in documents],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{document_id}", summary="Get a document", responses=_NOT_FOUND)
async def get_document(
    collection_id: str, document_id: uuid.UUID, session: ReadSessionDep
) -> DocumentRead:
    """One document with its status, error and chunk count."""
    return DocumentRead.model_validate(
        await service.get_document(session, collection_id, document_id)
    )


@router.delete(
    "/{document_id}",
    summary="Delete a document and its chunks",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
)
async def delete_document(collection_id: str, document_id: uuid.UUID, session: SessionDep) -> None:
    """The document, its chunks and their vectors are deleted."""
    document = await service.get_document(session, collection_id, document_id)
    await service.delete_document(session, document)


@router.get(
    "/{document_id}/chunks",
    summary="List a document's chunks",
    responses=_NOT_FOUND,
)
async def list_chunks(
    collection_id: str,
    document_id: uuid.UUID,
    session: ReadSessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ChunkPage:
    """Chunks in document order, with their text and metadata (page, section, rows)."""
    chunks, total = await service.list_chunks(session, collection_id, document_id, limit, offset)
    return ChunkPage(
        data=[ChunkRead.model_validate(c) for c in chunks], total=total, limit=limit, offset=offset
    )
