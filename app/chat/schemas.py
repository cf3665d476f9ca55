"""The resource API's chat body: a conversation, answered from a collection."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.chat.service import ChatQuery, Turn
from app.llm.client import RequestApiKey
from app.search.filters import FilterInput
from app.search.service import SearchMode


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=100_000)


class CollectionChatRequest(BaseModel):
    """Unknown fields are refused, as everywhere in the resource API."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=200,
        description="The conversation so far, oldest first; the last is the user's question. "
        "Older turns are dropped first if the prompt would not fit the model's context.",
    )
    instructions: str | None = Field(
        default=None, max_length=20_000, description="A developer message before the RAG prompt."
    )
    k: int | None = Field(
        default=None, ge=1, le=50, description="Chunks to retrieve (RAGSTORE_RAG_TOP_K)."
    )
    mode: SearchMode = Field(default="hybrid", description="How to retrieve them.")
    filters: FilterInput | None = Field(default=None, description="As for search.")
    min_similarity: float | None = Field(
        default=None,
        ge=-1,
        le=1,
        description="Least cosine similarity of a chunk worth answering from "
        "(RAGSTORE_RAG_MIN_SIMILARITY); keyword mode counts any matching chunk.",
    )
    model: str | None = Field(default=None, description="RAGSTORE_DEFAULT_CHAT_MODEL if omitted.")
    api_key: RequestApiKey | None = Field(default=None, description="OpenAI key for this request.")
    stream: bool = Field(
        default=True,
        description="true: server-sent events (sources, token..., done); false: one JSON answer.",
    )

    @model_validator(mode="after")
    def _ends_with_the_question(self) -> "CollectionChatRequest":
        if self.messages[-1].role != "user":
            raise ValueError("the last message must be the user's question (role 'user')")
        return self

    def query(self, collection_id: str) -> ChatQuery:
        return ChatQuery(
            question=self.messages[-1].content,
            collection_id=collection_id,
            instructions=self.instructions,
            model=self.model,
            api_key=self.api_key,
            include_usage=True,
            history=tuple(Turn(m.role, m.content) for m in self.messages[:-1]),
            k=self.k,
            mode=self.mode,
            filters=self.filters,
            min_similarity=self.min_similarity,
        )


class AnswerSource(BaseModel):
    chunk_id: int
    document_id: str
    filename: str
    page: int | None
    score: float
    similarity: float | None
    snippet: str


class ChatAnswerResponse(BaseModel):
    answer: str
    model: str
    sources: list[AnswerSource]
    usage: dict[str, int] | None
