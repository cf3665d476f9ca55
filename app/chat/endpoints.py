from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import Response
from openai.types.chat import ChatCompletionMessageParam

from app.chat.rag import NOTHING_RELEVANT, RagContext, retrieve_context
from app.chat.schemas import ChatRequest, RagChatRequest
from app.chat.service import single_answer, stream_chat
from app.chat.streaming import event_response, text_response, wants_events
from app.collection.service import get_session_collection
from app.core.config import Settings
from app.core.deps import LLMClientsDep, SearchDep, SessionDep, SettingsDep
from app.core.errors import INVALID_REQUEST, UNREADABLE_BODY, error_responses
from app.core.logging import request_api_key
from app.llm.client import LLMClients

router = APIRouter(tags=["chat"], responses=INVALID_REQUEST)

_RESPONSES: dict[int | str, dict[str, Any]] = {
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
PLAIN_CHAT_INSTRUCTIONS = "You are a helpful assistant."


async def _answer(
    llm_clients: LLMClients,
    settings: Settings,
    api_key: str | None,
    model: str | None,
    context: RagContext,
    accept: str | None,
) -> Response:
    """Stream the model's answer to the context's messages (or say nothing was found)."""
    events = wants_events(accept)
    if context.messages:
        client = llm_clients.for_key(api_key)
        parts = await stream_chat(
            client, model or settings.default_chat_model, context.messages, include_usage=events
        )
    else:
        parts = single_answer(NOTHING_RELEVANT)
    return event_response(parts, context.sources) if events else text_response(parts)


@router.post(
    "/api/chat",
    summary="Stream a chat completion",
    response_class=Response,
    responses=_RESPONSES,
)
async def chat(
    request: ChatRequest,
    settings: SettingsDep,
    llm_clients: LLMClientsDep,
    session: SessionDep,
    search: SearchDep,
    accept: AcceptHeader = None,
) -> Response:
    """Send a developer and a user message; tokens stream back as they arrive.
    With `session_id`, the answer draws on that collection's documents."""
    request_api_key.set(request.api_key)
    if request.session_id:
        context = await retrieve_context(
            session,
            search.with_api_key(request.api_key),
            settings,
            request.session_id,
            request.user_message,
            request.developer_message,
        )
    else:
        context = RagContext(
            sources=[], messages=_plain(request.developer_message, request.user_message)
        )
    return await _answer(llm_clients, settings, request.api_key, request.model, context, accept)


@router.post(
    "/api/rag-chat",
    summary="Stream an answer from a session's documents",
    response_class=Response,
    responses=_RESPONSES,
)
async def rag_chat(
    request: RagChatRequest,
    settings: SettingsDep,
    llm_clients: LLMClientsDep,
    session: SessionDep,
    search: SearchDep,
    accept: AcceptHeader = None,
) -> Response:
    """Retrieve the session's most relevant chunks and stream an answer that cites them."""
    request_api_key.set(request.api_key)
    if request.use_rag:
        context = await retrieve_context(
            session,
            search.with_api_key(request.api_key),
            settings,
            request.session_id,
            request.user_message,
        )
    else:
        await get_session_collection(session, request.session_id)
        context = RagContext(
            sources=[], messages=_plain(PLAIN_CHAT_INSTRUCTIONS, request.user_message)
        )
    return await _answer(llm_clients, settings, request.api_key, request.model, context, accept)


def _plain(instructions: str, question: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "developer", "content": instructions},
        {"role": "user", "content": question},
    ]
