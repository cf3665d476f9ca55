"""The two ways an answer leaves the server: plain text (the original) or server-sent events."""

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from typing import Any

from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.llm.streaming import StreamPart, Usage
from app.search.service import SearchHit

EVENT_STREAM = "text/event-stream"


def wants_events(accept: str | None) -> bool:
    return accept is not None and EVENT_STREAM in accept


def text_response(parts: AsyncIterator[StreamPart]) -> StreamingResponse:
    """Tokens as plain text, as the original front end reads them."""

    async def tokens() -> AsyncIterator[str]:
        async for part in parts:
            if isinstance(part, str):
                yield part

    return StreamingResponse(tokens(), media_type="text/plain; charset=utf-8")


def event_response(
    parts: AsyncIterator[StreamPart], sources: Sequence[SearchHit], model: str | None = None
) -> EventSourceResponse:
    """`sources` first, then `token` events, then `done` (with the model and usage, when
    the provider reports it) or `error`."""

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield _event("sources", {"sources": [source_summary(hit) for hit in sources]})
        usage: Usage | None = None
        async for part in parts:
            if isinstance(part, str):
                yield _event("token", {"text": part})
            elif isinstance(part, Usage):
                usage = part
            else:
                yield _event("error", {"detail": part.detail})
                return
        yield _event("done", {"model": model, "usage": asdict(usage) if usage else None})

    return EventSourceResponse(events(), ping=15)


SNIPPET_CHARACTERS = 200


def source_summary(hit: SearchHit) -> dict[str, Any]:
    return {
        "chunk_id": hit.chunk_id,
        "document_id": str(hit.document_id),
        "filename": hit.filename,
        "page": hit.metadata.get("page"),
        "score": hit.score,
        # The cosine similarity that decided relevance, and what the model was shown.
        "similarity": hit.similarity,
        "snippet": snippet(hit.text),
    }


def snippet(text: str, length: int = SNIPPET_CHARACTERS) -> str:
    """The start of a chunk's text on one line, cut at a word."""
    flat = " ".join(text.split())
    if len(flat) <= length:
        return flat
    return flat[:length].rsplit(" ", 1)[0] + "…"


def _event(name: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(event=name, data=json.dumps(data))
