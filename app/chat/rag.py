"""Retrieval-augmented answers: find the chunks, then ask the model with them as context."""

from dataclasses import dataclass

from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy.ext.asyncio import AsyncSession

from app.collection.service import get_session_collection
from app.core.config import Settings
from app.core.errors import BadRequest
from app.document.service import count_documents
from app.search.service import SearchHit, SearchService

NOTHING_RELEVANT = (
    "I could not find anything about that in the documents of this session, "
    "so I cannot answer it from them."
)


@dataclass(frozen=True)
class RagContext:
    sources: list[SearchHit]
    messages: list[ChatCompletionMessageParam]


async def retrieve_context(
    session: AsyncSession,
    search: SearchService,
    settings: Settings,
    collection_id: str,
    question: str,
    developer_message: str | None = None,
) -> RagContext:
    """The relevant chunks of the collection and the messages that put them before the model.

    No relevant chunk means no messages: the caller answers NOTHING_RELEVANT
    instead of letting the model invent one.
    """
    await get_session_collection(session, collection_id)
    if (await count_documents(session, [collection_id]))[collection_id] == 0:
        raise BadRequest(f"Session {collection_id} has no documents: upload one first")
    hits = await search.search(session, collection_id, question, settings.rag_top_k, "hybrid")
    relevant = [hit for hit in hits if _is_relevant(hit, settings.rag_min_similarity)]
    if not relevant:
        return RagContext(sources=[], messages=[])
    return RagContext(
        sources=relevant,
        messages=build_messages(settings.rag_system_prompt, question, relevant, developer_message),
    )


def build_messages(
    system_prompt: str,
    question: str,
    sources: list[SearchHit],
    developer_message: str | None = None,
) -> list[ChatCompletionMessageParam]:
    """One `[Source: filename]` block per chunk, then the question."""
    context = "\n\n".join(f"[Source: {hit.filename}]\n{hit.text}" for hit in sources)
    instructions = (
        system_prompt if not developer_message else f"{developer_message}\n\n{system_prompt}"
    )
    return [
        {"role": "developer", "content": instructions},
        {"role": "user", "content": f"Context:\n\n{context}\n\nQuestion: {question}"},
    ]


def _is_relevant(hit: SearchHit, min_similarity: float) -> bool:
    """Close enough in meaning: sharing a word is not enough (keyword search matches any)."""
    return hit.similarity is not None and hit.similarity >= min_similarity
