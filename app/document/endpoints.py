import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dependencies import ReadSessionDep, SessionDep
from app.db.models import Document, IngestionJob
from app.document import service
from app.document.schemas import (
    ChunkPage,
    ChunkRead,
    DocumentPage,
    DocumentRead,
    DocumentUpdate,
    DocumentUploaded,
    LatestJob,
)
from app.ingestion.dependencies import UPLOAD_ERRORS, UploadFormDep
from app.jobs.dependencies import JobsDep
from app.jobs.service import JobService
from app.web.dependencies import AsyncRequestedDep, Offset, SettingsDep
from app.web.errors import INVALID_REQUEST, UNREADABLE_BODY, error_responses

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
        metadata_updated=accepted.result.metadata_updated,
        job_id=accepted.job.id if accepted.job is not None else None,
    )


async def _with_latest_jobs(
    session: AsyncSession, jobs: JobService, documents: Sequence[Document]
) -> list[DocumentRead]:
    latest = await jobs.latest_for(session, documents)
    return [
        DocumentRead.model_validate(document).model_copy(
            update={"latest_job": _latest_job(latest.get(document.id))}
        )
        for document in documents
    ]


def _latest_job(job: IngestionJob | None) -> LatestJob | None:
    return None if job is None else LatestJob.model_validate(job)


@router.get("", summary="List a collection's documents", responses=_COLLECTION_NOT_FOUND)
async def list_documents(
    collection_id: str,
    session: ReadSessionDep,
    jobs: JobsDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DocumentPage:
    """Documents in upload order, with their processing status and latest job."""
    documents, total = await service.list_documents(session, collection_id, limit, offset)
    return DocumentPage(
        data=await _with_latest_jobs(session, jobs, documents),
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{document_id}", summary="Get a document", responses=_NOT_FOUND)
async def get_document(
    collection_id: str, document_id: uuid.UUID, session: ReadSessionDep, jobs: JobsDep
) -> DocumentRead:
    """One document with its status, error, chunk count and latest job."""
    document = await service.get_document(session, collection_id, document_id)
    return (await _with_latest_jobs(session, jobs, [document]))[0]


@router.patch(
    "/{document_id}",
    summary="Change a document's metadata",
    responses={
        **_NOT_FOUND,
        **error_responses({400: UNREADABLE_BODY, 409: "The document is still being processed"}),
    },
)
async def update_document(
    collection_id: str,
    document_id: uuid.UUID,
    body: DocumentUpdate,
    session: SessionDep,
    settings: SettingsDep,
) -> DocumentRead:
    """The new metadata replaces the old, in the document and in every chunk's copy, in
    one transaction: filters see it at once, and nothing is embedded again."""
    document = await service.update_document_metadata(
        session, collection_id, document_id, body.metadata, settings
    )
    return DocumentRead.model_validate(document)


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
