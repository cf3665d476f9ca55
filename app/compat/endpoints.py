"""The original app's routes, now backed by PostgreSQL: a session is a collection.

Same paths, fields and form parameters, so its clients work unchanged; the
same services as the resource API underneath.
"""

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile

from app.collection import service as collections
from app.compat.schemas import (
    DocumentDeleted,
    SessionDeleted,
    SessionInfo,
    SessionList,
    UploadResponse,
)
from app.core.deps import IngestionDep, SessionDep, SettingsDep
from app.core.errors import NotFound
from app.core.logging import request_api_key
from app.db.models import Collection
from app.document import service as documents
from app.ingestion.service import ProcessingOptions
from app.ingestion.upload import parse_metadata, received_upload

router = APIRouter(tags=["original app"])


async def _require_session(session: SessionDep, session_id: str) -> Collection:
    """The collection behind a session id, or the original app's 404."""
    try:
        return await collections.get_collection(session, session_id)
    except NotFound as exc:
        raise NotFound(f"Session not found: {session_id}") from exc


_UPLOAD_ERRORS: dict[int | str, dict[str, str]] = {
    413: {"description": "The file is over the upload limit"},
    415: {"description": "The file type is not supported"},
    422: {"description": "The file is encrypted, damaged, empty or has no text"},
    502: {"description": "Embedding failed after retries; the document is marked failed"},
}


async def _upload(
    file: UploadFile,
    session_id: str | None,
    api_key: str | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    metadata: str | None,
    ingestion: IngestionDep,
    settings: SettingsDep,
    session: SessionDep,
) -> UploadResponse:
    request_api_key.set(api_key)
    options = ProcessingOptions.from_request(
        settings, chunk_size, chunk_overlap, parse_metadata(metadata)
    )
    async with received_upload(file, settings.max_upload_bytes) as stored:
        result = await ingestion.with_api_key(api_key).ingest(
            stored, session_id, options, create_collection=True
        )
    names = await collections.document_filenames(session, result.collection.id)
    document = result.document
    verb = "was already processed" if result.already_processed else "uploaded and processed"
    return UploadResponse(
        success=True,
        message=f"Document '{document.filename}' {verb} successfully "
        f"({document.chunk_count} chunks)",
        session_id=result.collection.id,
        document_count=len(names),
        filename=document.filename,
        document_id=document.id,
        chunk_count=document.chunk_count,
        status=document.status,
    )


UploadFileField = Annotated[UploadFile, File(description="PDF, DOCX, XLSX, CSV, TXT, MD or HTML")]
SessionIdField = Annotated[
    str | None, Form(description="Collection to add to; created when absent or unknown")
]
ApiKeyField = Annotated[str | None, Form(description="OpenAI key for this upload's embeddings")]
ChunkSizeField = Annotated[int | None, Form(description="Characters per chunk (default 500)")]
OverlapField = Annotated[int | None, Form(description="Characters of overlap (default 50)")]
MetadataField = Annotated[str | None, Form(description="A JSON object stored with the document")]


@router.post(
    "/api/upload-document", summary="Upload a document (original route)", responses=_UPLOAD_ERRORS
)
async def upload_document(
    file: UploadFileField,
    ingestion: IngestionDep,
    settings: SettingsDep,
    session: SessionDep,
    session_id: SessionIdField = None,
    api_key: ApiKeyField = None,
    chunk_size: ChunkSizeField = None,
    chunk_overlap: OverlapField = None,
    metadata: MetadataField = None,
) -> UploadResponse:
    """Store, parse, chunk and embed a file into a session; searchable when this returns."""
    return await _upload(
        file, session_id, api_key, chunk_size, chunk_overlap, metadata, ingestion, settings, session
    )


@router.post(
    "/api/upload-pdf",
    summary="Upload a document (alias of /api/upload-document)",
    responses=_UPLOAD_ERRORS,
)
async def upload_pdf(
    file: UploadFileField,
    ingestion: IngestionDep,
    settings: SettingsDep,
    session: SessionDep,
    session_id: SessionIdField = None,
    api_key: ApiKeyField = None,
    chunk_size: ChunkSizeField = None,
    chunk_overlap: OverlapField = None,
    metadata: MetadataField = None,
) -> UploadResponse:
    """The original app's PDF route; any supported type is accepted."""
    return await _upload(
        file, session_id, api_key, chunk_size, chunk_overlap, metadata, ingestion, settings, session
    )


@router.get("/api/sessions", summary="List sessions (original route)")
async def list_sessions(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
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
    responses={404: {"description": "Session not found"}},
)
async def get_session(session_id: str, session: SessionDep) -> SessionInfo:
    """A session with its documents' names."""
    collection = await _require_session(session, session_id)
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
    responses={404: {"description": "Session not found"}},
)
async def delete_session(session_id: str, session: SessionDep) -> SessionDeleted:
    """Delete a session with all its documents, chunks and vectors."""
    await _require_session(session, session_id)
    await collections.delete_collection(session, session_id)
    return SessionDeleted(success=True, message=f"Session {session_id} deleted")


@router.delete(
    "/api/documents/{session_id}/{document_name}",
    summary="Delete a document of a session (original route)",
    responses={404: {"description": "Session or document not found"}},
)
async def delete_document(
    session_id: str, document_name: str, session: SessionDep
) -> DocumentDeleted:
    """Delete one document by name; its chunks and vectors really go (unlike the original)."""
    await _require_session(session, session_id)
    await documents.delete_document_by_filename(session, session_id, document_name)
    remaining = await collections.document_filenames(session, session_id)
    return DocumentDeleted(
        success=True,
        message=f"Document '{document_name}' deleted from session {session_id}",
        remaining_documents=remaining,
        document_count=len(remaining),
    )
