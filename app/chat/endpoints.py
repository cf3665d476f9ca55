"""Chat over a collection, resource-style: a conversation in, an answer out (streamed as
server-sent events, or as one JSON body)."""

from dataclasses import asdict

from fastapi import APIRouter, Response

from app.chat.dependencies import ChatDep
from app.chat.responses import event_response, source_summary
from app.chat.schemas import ChatAnswerResponse, CollectionChatRequest
from app.core.errors import BadGateway
from app.llm.streaming import StreamFailed, Usage
from app.web.errors import INVALID_REQUEST, UNREADABLE_BODY, error_responses

router = APIRouter(tags=["chat"], responses=INVALID_REQUEST)


@router.post(
    "/api/collections/{collection_id}/chat",
    summary="Answer a conversation from a collection's documents",
    response_model=ChatAnswerResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "With `stream` (the default): `sources`, `token` events, then "
            "`done` (model and usage) or `error`. Without: one JSON answer.",
        },
        **error_responses(
            {
                400: f"{UNREADABLE_BODY}; or the collection has no documents",
                404: "No such collection",
                502: "The model provider failed",
            }
        ),
    },
)
async def chat_with_collection(
    collection_id: str, body: CollectionChatRequest, chat: ChatDep
) -> Response:
    """The relevant chunks (k, mode, filters as asked) are retrieved for the last message
    and put before the model with the conversation; the answer cites them."""
    answer = await chat.answer(body.query(collection_id))
    if body.stream:
        return event_response(answer.parts, answer.sources, answer.model)
    text, usage = [], None
    async for part in answer.parts:
        if isinstance(part, str):
            text.append(part)
        elif isinstance(part, Usage):
            usage = part
        elif isinstance(part, StreamFailed):
            raise BadGateway(part.detail)
    response = ChatAnswerResponse.model_validate(
        {
            "answer": "".join(text),
            "model": answer.model,
            "sources": [source_summary(hit) for hit in answer.sources],
            "usage": asdict(usage) if usage is not None else None,
        }
    )
    return Response(response.model_dump_json(), media_type="application/json")
