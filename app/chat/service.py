"""Chat: a question answered by the model, from a collection's documents when one is named.

Retrieval-augmented answers find the collection's relevant chunks and put them
before the model as context. When nothing relevant is found the model is not
asked at all: the answer says so, instead of letting the model invent one.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from openai.types.chat import ChatCompletionMessageParam

from app.collection.service import describe_collection, get_collection
from app.core.config import Settings
from app.core.errors import BadRequest
from app.db.database import Database
from app.llm.client import LLMClients
from app.llm.streaming import StreamPart, single_answer, stream_chat
from app.search.service import SearchHit, SearchQuery, SearchService

NOTHING_RELEVANT = (
    "I could not find anything about that in these documents, so I cannot answer it from them."
)
PLAIN_INSTRUCTIONS = "You are a helpful assistant."


class EmptyCollection(BadRequest):
    """Retrieval was asked of a collection that holds no documents."""


@dataclass(frozen=True)
class ChatQuery:
    question: str
    # Answer from this collection's documents; None: a plain chat answer.
    collection_id: str | None = None
    # The developer message: before the RAG prompt, or alone in a plain answer.
    instructions: str | None = None
    model: str | None = None
    # The caller's own provider key (never stored); the server's when None.
    api_key: str | None = None
    # False: the collection must exist, but the answer does not use its documents.
    use_documents: bool = True
    include_usage: bool = False
    # What the answer says when no chunk is relevant (each face has its own words).
    nothing_relevant: str = NOTHING_RELEVANT


@dataclass(frozen=True)
class ChatAnswer:
    """The chunks the answer draws on, and the answer as it streams in."""

    sources: list[SearchHit]
    parts: AsyncIterator[StreamPart]


class ChatService:
    """Owns its sessions (it takes the Database): each read is a short read session of its
    own, so no connection is held while the provider embeds the question or answers."""

    def __init__(
        self,
        database: Database,
        search: SearchService,
        llm_clients: LLMClients,
        settings: Settings,
    ) -> None:
        self.database = database
        self.search = search
        self.llm_clients = llm_clients
        self.settings = settings

    async def answer(self, query: ChatQuery) -> ChatAnswer:
        """Open the model's stream for the question (with its sources, under RAG).

        Errors the caller can be told with a status code (no collection, no
        documents, a refused key, an unreachable provider) are raised here,
        before anything streams.
        """
        if query.collection_id is not None and query.use_documents:
            sources = await self._relevant_chunks(query.collection_id, query)
            if not sources:
                return ChatAnswer([], single_answer(query.nothing_relevant))
            messages = build_messages(
                self.settings.rag_system_prompt, query.question, sources, query.instructions
            )
        else:
            if query.collection_id is not None:
                async with self.database.read_session() as session:
                    await get_collection(session, query.collection_id)
            sources, messages = [], _plain(query.instructions, query.question)
        parts = await stream_chat(
            self.llm_clients.for_key(query.api_key),
            query.model or self.settings.default_chat_model,
            messages,
            include_usage=query.include_usage,
        )
        return ChatAnswer(sources, parts)

    async def _relevant_chunks(self, collection_id: str, query: ChatQuery) -> list[SearchHit]:
        async with self.database.read_session() as session:
            summary = await describe_collection(session, collection_id)
        if summary.document_count == 0:
            raise EmptyCollection(
                f"collection {collection_id!r} has no documents: upload one first"
            )
        search = SearchQuery(
            collection_id, query.question, k=self.settings.rag_top_k, api_key=query.api_key
        )
        vector = await self.search.with_api_key(query.api_key).embed_query(query.question)
        async with self.database.read_session() as session:
            hits = await self.search.search_by_vector(session, search, vector)
        return [hit for hit in hits if _is_relevant(hit, self.settings.rag_min_similarity)]


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


def _plain(instructions: str | None, question: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "developer", "content": instructions or PLAIN_INSTRUCTIONS},
        {"role": "user", "content": question},
    ]


def _is_relevant(hit: SearchHit, min_similarity: float) -> bool:
    """Close enough in meaning: sharing a word is not enough (keyword search matches any)."""
    return hit.similarity is not None and hit.similarity >= min_similarity
