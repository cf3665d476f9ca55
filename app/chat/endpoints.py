from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from openai.types.chat import ChatCompletionMessageParam

from app.chat.schemas import ChatRequest
from app.chat.service import stream_chat
from app.core.deps import LLMClientsDep, SettingsDep
from app.core.logging import request_api_key

router = APIRouter(tags=["chat"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or the provider rejected it"},
    429: {"description": "The provider is rate limiting (Retry-After passed on)"},
    502: {"description": "The provider failed or could not be reached"},
    504: {"description": "The provider did not answer in time"},
}


@router.post(
    "/api/chat",
    summary="Stream a chat completion as plain text",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, **_ERRORS},
)
async def chat(
    request: ChatRequest, settings: SettingsDep, llm_clients: LLMClientsDep
) -> StreamingResponse:
    """Send a developer and a user message; the model's tokens stream back as they arrive."""
    request_api_key.set(request.api_key)
    client = llm_clients.for_key(request.api_key)
    messages: list[ChatCompletionMessageParam] = [
        {"role": "developer", "content": request.developer_message},
        {"role": "user", "content": request.user_message},
    ]
    tokens = await stream_chat(client, request.model or settings.default_chat_model, messages)
    return StreamingResponse(tokens, media_type="text/plain; charset=utf-8")
