"""The original app's routes, now backed by PostgreSQL: a session is a collection.

Same paths, fields and form parameters, so its clients work unchanged. Each
route translates to the resource services and back: the original's wording
("session"), status codes and body shapes live here, and nothing else does.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Query, Response, status

from app.chat.dependencies import ChatDep
from app.chat.responses import event_response, text_response, wants_events
from app.chat.service import ChatQuery, EmptyCollection
from app.collection import service as collections
from app.collection.schemas import COLLECTION_ID_PATTERN
from app.collection.service import CollectionNotFound
from app.compat.schemas import (
    ChatRequest,
    CollectionSearchRequest,
    DocumentDeleted,
    RagChatRequest,
    SessionDeleted,
    SessionInfo,
    SessionList,
    UploadResponse,
)
from app.core.errors import BadRequest, NotFound
from app.db.dependencies import ReadSessionDep, SessionDep
from app.document import service as documents
from app.document.service import DocumentNotFound
from app.ingestion.dependencies import UPLOAD_ERRORS, UploadFormDep
from app.jobs.dependencies import JobsDep
from app.search.dependencies import SearchDep
from app.search.endpoints import SEARCH_ERRORS
from app.search.schemas import SearchResponse, search_query, search_response
from app.web.dependencies import AsyncRequestedDep, Offset
from app.web.errors import INVALID_REQUEST, UNREADABLE_BODY, error_responses

router = APIRouter(tags=["original app"], responses=INVALID_REQUEST)

_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": UploadResponse,
        "description": "Stored and queued (asynchronous upload): follow job_id",
    },
    **UPLOAD_ERRORS,
}
_SESSION_NOT_FOUND = error_responses({404: "Session not found"})
_CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/plain": {}, "text/event-stream": {}},
        "description": "The answer as plain-text tokens, or server-sent events "
        "(`sources`, `token`..., `done` or `error`) with `Accept: text/event-stream`.",
    },
    **error_responses(
        {
            400: f"{UNREADABLE_BODY}; or the session has no documents",
            401: "No API key, or the provider rejected it",
            404: "Session not found",
            429: "The provider is rate limiting (Retry-After passed on)",
            502: "The provider failed or could not be reached",
            504: "The provider did not answer in time",
        }
    ),
}
AcceptHeader = Annotated[str | None, Header()]

NOTHING_RELEVANT = (
    "I could not find anything about that in the documents of this session, "
    "so I cannot answer it from them."
)


@contextmanager
def session_words(session_id: str) -> Iterator[None]:
    """The resource services' errors about a collection, in the original app's words."""
    try:
        yield
    except CollectionNotFound as exc:
        raise NotFound(f"Session not found: {session_id}") from exc
    except EmptyCollection as exc:
        raise BadRequest(f"Session {session_id} has no documents: upload one first") from exc


@router.post(
    "/api/upload-document",
    summary="Upload a document (original route)",
    responses=_UPLOAD_RESPONSES,
)
async def upload_document(
    upload: UploadFormDep,
    jobs: JobsDep,
    asynchronous: AsyncRequestedDep,
    session: SessionDep,
    response: Response,
    session_id: Annotated[
        str | None,
        Form(
            description="Collection to add to; created when absent or unknown (letters, "
            "digits and `._:-`, as a collection id)",
            pattern=COLLECTION_ID_PATTERN,
        ),
    ] = None,
) -> UploadResponse:
    """Store, parse, chunk and embed a file into a session; searchable when this returns.
    With `?wait=false` (or `Prefer: respond-async`): 202 as soon as the file is stored."""
    accepted = await jobs.accept(
        upload, session_id, create_collection=True, asynchronous=asynchronous
    )
    result, job = accepted.result, accepted.job
    summary = await collections.describe_collection(session, result.collection.id)
    document = result.document
    if job is not None:
        response.status_code = status.HTTP_202_ACCEPTED
        message = f"Document '{document.filename}' stored; processing in the background"
    elif result.metadata_updated:
        message = (
            f"Document '{document.filename}' was already processed successfully; "
            "its metadata was updated"
        )
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
        document_count=summary.document_count,
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
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Offset = 0,
) -> SessionList:
    """Every session (collection) with its documents' names."""
    summaries, total = await collections.list_collections(session, limit, offset)
    names = await documents.document_filenames(session, [s.collection.id for s in summaries])
    return SessionList(
        total_sessions=total,
        sessions=[
            SessionInfo(
                session_id=s.collection.id,
                document_count=s.document_count,
                documents=names[s.collection.id],
                created_at=s.collection.created_at,
            )
            for s in summaries
        ],
    )


@router.get(
    "/api/session/{session_id}",
    summary="Get a session (original route)",
    responses=_SESSION_NOT_FOUND,
)
async def get_session(session_id: str, session: ReadSessionDep) -> SessionInfo:
    """A session with its documents' names."""
    with session_words(session_id):
        summary = await collections.describe_collection(session, session_id)
    names = await documents.document_filenames(session, [session_id])
    return SessionInfo(
        session_id=summary.collection.id,
        document_count=summary.document_count,
        documents=names[session_id],
        created_at=summary.collection.created_at,
    )


@router.delete(
    "/api/session/{session_id}",
    summary="Delete a session (original route)",
    responses=_SESSION_NOT_FOUND,
)
async def delete_session(session_id: str, session: SessionDep) -> SessionDeleted:
    """Delete a session with all its documents, chunks and vectors."""
    with session_words(session_id):
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
    with session_words(session_id):
        try:
            await documents.delete_document_by_filename(session, session_id, document_name)
        except DocumentNotFound as exc:
            raise NotFound(
                f"document {document_name!r} not found in session {session_id!r}"
            ) from exc
    remaining = (await documents.document_filenames(session, [session_id]))[session_id]
    return DocumentDeleted(
        success=True,
        message=f"Document '{document_name}' deleted from session {session_id}",
        remaining_documents=remaining,
        document_count=len(remaining),
    )


@router.post("/api/search", summary="Search a session", responses=SEARCH_ERRORS)
async def search_session(
    body: CollectionSearchRequest, session: ReadSessionDep, search: SearchDep
) -> SearchResponse:
    """The collection search, naming the collection by the original app's `session_id`."""
    hits = await search.search(session, search_query(body.session_id, body))
    return search_response(body, hits)


@router.post(
    "/api/chat",
    summary="Stream a chat completion",
    response_class=Response,
    responses=_CHAT_RESPONSES,
)
async def chat(request: ChatRequest, chat: ChatDep, accept: AcceptHeader = None) -> Response:
    """Send a developer and a user message; tokens stream back as they arrive.
    With `session_id`, the answer draws on that collection's documents."""
    query = ChatQuery(
        question=request.user_message,
        collection_id=request.session_id or None,
        instructions=request.developer_message,
        model=request.model,
        api_key=request.api_key,
        include_usage=wants_events(accept),
        nothing_relevant=NOTHING_RELEVANT,
    )
    return await _streamed_answer(chat, query, accept)


@router.post(
    "/api/rag-chat",
    summary="Stream an answer from a session's documents",
    response_class=Response,
    responses=_CHAT_RESPONSES,
)
async def rag_chat(request: RagChatRequest, chat: ChatDep, accept: AcceptHeader = None) -> Response:
    """Retrieve the session's most relevant chunks and stream an answer that cites them."""
    query = ChatQuery(
        question=request.user_message,
        collection_id=request.session_id,
        model=request.model,
        api_key=request.api_key,
        use_documents=request.use_rag,
        include_usage=wants_events(accept),
        nothing_relevant=NOTHING_RELEVANT,
    )
    return await _streamed_answer(chat, query, accept)


async def _streamed_answer(chat: ChatDep, query: ChatQuery, accept: str | None) -> Response:
    """Plain-text tokens as the original front end reads them, or server-sent events."""
    with session_words(query.collection_id or ""):
        answer = await chat.answer(query)
    if wants_events(accept):
        return event_response(answer.parts, answer.sources, answer.model)
    return text_response(answer.parts)
