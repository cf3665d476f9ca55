"""Chat: a question answered by the model, from a collection's documents when one is named.

Retrieval-augmented answers find the collection's relevant chunks and put them
before the model as context. When nothing relevant is found the model is not
asked at all: the answer says so, instead of letting the model invent one.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from openai.types.chat import ChatCompletionMessageParam

from app.collection.service import describe_collection, get_collection
from app.core.config import Settings
from app.core.errors import BadRequest, UnprocessableContent
from app.db.database import Database
from app.llm.client import LLMClients
from app.llm.streaming import StreamPart, single_answer, stream_chat
from app.search.filters import Filter
from app.search.service import SearchHit, SearchMode, SearchQuery, SearchService

NOTHING_RELEVANT = (
    "I could not find anything about that in these documents, so I cannot answer it from them."
)
PLAIN_INSTRUCTIONS = "You are a helpful assistant."


class EmptyCollection(BadRequest):
    """Retrieval was asked of a collection that holds no documents."""


# A conservative estimate of characters per token for prompt budgets (English runs about
# 4; other languages and code fewer): no tokenizer to download, and rarely too long.
CHARS_PER_TOKEN = 3


@dataclass(frozen=True)
class Turn:
    """An earlier message of the conversation."""

    role: str
    content: str


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
    # The conversation before the question, oldest first.
    history: tuple[Turn, ...] = ()
    # Retrieval: how many chunks (RAGSTORE_RAG_TOP_K when None), how, which, and how
    # similar a chunk must be to count (RAGSTORE_RAG_MIN_SIMILARITY when None).
    k: int | None = None
    mode: SearchMode = "hybrid"
    filters: Filter | None = None
    min_similarity: float | None = None


@dataclass(frozen=True)
class ChatAnswer:
    """The chunks the answer draws on, and the answer as it streams in."""

    sources: list[SearchHit]
    parts: AsyncIterator[StreamPart]
    # The model asked to answer.
    model: str


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
        model = query.model or self.settings.default_chat_model
        budget = (
            self.settings.chat_context_tokens - self.settings.chat_answer_tokens
        ) * CHARS_PER_TOKEN
        if query.collection_id is not None and query.use_documents:
            sources = await self._relevant_chunks(query.collection_id, query)
            if not sources:
                return ChatAnswer([], single_answer(query.nothing_relevant), model)
            system = _instructions(self.settings.rag_system_prompt, query.instructions)
            sources, history = fit_to_context(system, query, sources, budget)
            messages = build_messages(system, query.question, sources, history)
        else:
            if query.collection_id is not None:
                async with self.database.read_session() as session:
                    await get_collection(session, query.collection_id)
            system = query.instructions or PLAIN_INSTRUCTIONS
            sources, history = fit_to_context(system, query, [], budget)
            messages = _plain(system, query.question, history)
        parts = await stream_chat(
            self.llm_clients.for_key(query.api_key),
            model,
            messages,
            include_usage=query.include_usage,
        )
        return ChatAnswer(sources, parts, model)

    async def _relevant_chunks(self, collection_id: str, query: ChatQuery) -> list[SearchHit]:
        async with self.database.read_session() as session:
            summary = await describe_collection(session, collection_id)
        if summary.document_count == 0:
            raise EmptyCollection(
                f"collection {collection_id!r} has no documents: upload one first"
            )
        search = SearchQuery(
            collection_id,
            query.question,
            k=query.k or self.settings.rag_top_k,
            mode=query.mode,
            filters=query.filters,
            api_key=query.api_key,
        )
        vector = (
            await self.search.with_api_key(query.api_key).embed_query(query.question)
            if query.mode != "keyword"
            else None
        )
        async with self.database.read_session() as session:
            hits = await self.search.search_by_vector(session, search, vector)
        least = (
            self.settings.rag_min_similarity
            if query.min_similarity is None
            else query.min_similarity
        )
        return [hit for hit in hits if _is_relevant(hit, query.mode, least)]


def build_messages(
    instructions: str,
    question: str,
    sources: Sequence[SearchHit],
    history: Sequence[Turn] = (),
) -> list[ChatCompletionMessageParam]:
    """The instructions, the conversation so far, then one `[Source: filename]` block per
    chunk before the question."""
    return [
        {"role": "developer", "content": instructions},
        *_turns(history),
        {"role": "user", "content": _with_context(question, sources)},
    ]


def fit_to_context(
    instructions: str, query: ChatQuery, sources: Sequence[SearchHit], budget: int
) -> tuple[list[SearchHit], tuple[Turn, ...]]:
    """The sources and turns that fit `budget` characters with the question: the oldest
    turns go first, then the least relevant sources (one always stays); a question that
    does not fit alone is a 422."""
    history, kept = list(query.history), list(sources)

    def size() -> int:
        turns = sum(len(turn.content) for turn in history)
        return len(instructions) + turns + len(_with_context(query.question, kept))

    while history and size() > budget:
        history.pop(0)
    while len(kept) > 1 and size() > budget:
        kept.pop()
    if size() > budget:
        raise UnprocessableContent(
            f"the question{' and its context' if kept else ''} take about "
            f"{size() // CHARS_PER_TOKEN} tokens, more than the model's context leaves "
            "(RAGSTORE_CHAT_CONTEXT_TOKENS less RAGSTORE_CHAT_ANSWER_TOKENS)"
        )
    return kept, tuple(history)


def _instructions(system_prompt: str, developer_message: str | None) -> str:
    return system_prompt if not developer_message else f"{developer_message}\n\n{system_prompt}"


def _with_context(question: str, sources: Sequence[SearchHit]) -> str:
    if not sources:
        return question
    context = "\n\n".join(f"[Source: {hit.filename}]\n{hit.text}" for hit in sources)
    return f"Context:\n\n{context}\n\nQuestion: {question}"


def _turns(history: Sequence[Turn]) -> list[ChatCompletionMessageParam]:
    turns: list[ChatCompletionMessageParam] = []
    for turn in history:
        if turn.role == "assistant":
            turns.append({"role": "assistant", "content": turn.content})
        else:
            turns.append({"role": "user", "content": turn.content})
    return turns


def _plain(
    instructions: str, question: str, history: Sequence[Turn] = ()
) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "developer", "content": instructions},
        *_turns(history),
        {"role": "user", "content": question},
    ]


def _is_relevant(hit: SearchHit, mode: SearchMode, min_similarity: float) -> bool:
    """Close enough in meaning: sharing a word is not enough, except in keyword mode, where
    matching the words is what was asked for."""
    if mode == "keyword":
        return hit.keyword_rank is not None
    return hit.similarity is not None and hit.similarity >= min_similarity
