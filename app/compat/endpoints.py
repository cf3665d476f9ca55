"""The original app's routes, now backed by PostgreSQL: a session is a collection.

Same paths, fields and form parameters, so its clients work unchanged; the
same services as the resource API underneath.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Response, status

from app.collection import service as collections
from app.compat.schemas import (
    DocumentDeleted,
    SessionDeleted,
    SessionInfo,
    SessionList,
    UploadResponse,
)
from app.core.deps import AsyncRequestedDep, IngestionDep, JobsDep, Offset, SessionDep
from app.core.errors import INVALID_REQUEST, error_responses
from app.document import service as documents
from app.ingestion.upload import UPLOAD_ERRORS, UploadFormDep

router = APIRouter(tags=["original app"], responses=INVALID_REQUEST)

_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": UploadResponse,
        "description": "Stored and queued (asynchronous upload): follow job_id",
    },
    **UPLOAD_ERRORS,
}
_SESSION_NOT_FOUND = error_responses({404: "Session not found"})


@router.post(
    "/api/upload-document",
    summary="Upload a document (original route)",
    responses=_UPLOAD_RESPONSES,
)
async def upload_document(
    form: UploadFormDep,
    ingestion: IngestionDep,
    jobs: JobsDep,
    asynchronous: AsyncRequestedDep,
    session: SessionDep,
    response: Response,
    session_id: Annotated[
        str | None, Form(description="Collection to add to; created when absent or unknown")
    ] = None,
) -> UploadResponse:
    """Store, parse, chunk and embed a file into a session; searchable when this returns.
    With `?wait=false` (or `Prefer: respond-async`): 202 as soon as the file is stored."""
    job = None
    if asynchronous:
        result, job = await jobs.enqueue_form(form, session_id, create_collection=True)
    else:
        result = await ingestion.ingest_form(form, session_id, create_collection=True)
    names = await collections.document_filenames(session, result.collection.id)
    document = result.document
    if job is not None:
        response.status_code = status.HTTP_202_ACCEPTED
        message = f"Document '{document.filename}' stored; processing in the background"
    elif result.already_processed:
        message = f"Document '{document.filename}' was already processed successfully"
    else:
        message = (
            f"Document '{document.filename}' uploaded and processed successfully "
            f"({document.chunk_count} chunks)"
        )
    return UploadResponse(
        success=True,
        message=message,
        session_id=result.collection.id,
        document_count=len(names),
        filename=document.filename,
        document_id=document.id,
        chunk_count=document.chunk_count,
        status=document.status,
        job_id=job.id if job is not None else None,
    )


# The original app's PDF route: the same upload, any supported type.
router.add_api_route(
    "/api/upload-pdf",
    upload_document,
    methods=["POST"],
    summary="Upload a document (alias of /api/upload-document)",
    responses=_UPLOAD_RESPONSES,
)


@router.get("/api/sessions", summary="List sessions (original route)")
async def list_sessions(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Offset = 0,
) -> SessionList:
    """Every session (collection) with its documents' names."""
    listed, total, filenames = await collections.list_collections(session, limit, offset)
    return SessionList(
        total_sessions=total,
        sessions=[
            SessionInfo(
                session_id=c.id,
                document_count=len(filenames[c.id]),
                documents=filenames[c.id],
                created_at=c.created_at,
            )
            for c in listed
        ],
    )


@router.get(
    "/api/session/{session_id}",
    summary="Get a session (original route)",
    responses=_SESSION_NOT_FOUND,
)
async def get_session(session_id: str, session: SessionDep) -> SessionInfo:
    """A session with its documents' names."""
    collection = await collections.get_session_collection(session, session_id)
    names = await collections.document_filenames(session, session_id)
    return SessionInfo(
        session_id=collection.id,
        document_count=len(names),
        documents=names,
        created_at=collection.created_at,
    )


@router.delete(
    "/api/session/{session_id}",
    summary="Delete a session (original route)",
    responses=_SESSION_NOT_FOUND,
)
async def delete_session(session_id: str, session: SessionDep) -> SessionDeleted:
    """Delete a session with all its documents, chunks and vectors."""
    await collections.get_session_collection(session, session_id)
    await collections.delete_collection(session, session_id)
    return SessionDeleted(success=True, message=f"Session {session_id} deleted")


@router.delete(
    "/api/documents/{session_id}/{document_name}",
    summary="Delete a document of a session (original route)",
    responses=error_responses({404: "Session or document not found"}),
)
async def delete_document(
    session_id: str, document_name: str, session: SessionDep
) -> DocumentDeleted:
    """Delete one document by name; its chunks and vectors really go (unlike the original)."""
    await collections.get_session_collection(session, session_id)
    await documents.delete_document_by_filename(session, session_id, document_name)
    remaining = await collections.document_filenames(session, session_id)
    return DocumentDeleted(
        success=True,
        message=f"Document '{document_name}' deleted from session {session_id}",
        remaining_documents=remaining,
        document_count=len(remaining),
    )
