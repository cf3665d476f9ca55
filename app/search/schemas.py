import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.llm.client import RequestApiKey
from app.search.filters import FilterInput
from app.search.service import SearchHit, SearchMode, SearchQuery


class SearchRequest(BaseModel):
    """A search's body; the collection is named by the path (or, originally, `session_id`).
    Unknown fields are refused (a misspelt `top_k` would silently give the default)."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=4, ge=1, le=100, description="How many chunks to return.")
    mode: SearchMode = Field(
        default="hybrid", description="vector, keyword or hybrid (both, fused)."
    )
    filters: FilterInput | None = Field(
        default=None,
        description="OpenAI-style filter on chunk metadata; keys `document_id` and "
        '`filename` filter on the document. Shorthand: `{"product": "x200"}` (each key '
        "equals its value; a list value: is one of them).",
    )
    min_score: float | None = Field(
        default=None,
        description="Drop results scoring below this (cosine similarity for vector, "
        "the BM25 score for keyword, the fused rank score for hybrid: 0-1, where 1 is first in "
        "both lists).",
    )
    api_key: RequestApiKey | None = Field(
        default=None, description="OpenAI key to embed the query with."
    )


class SearchResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    chunk_id: int
    document_id: uuid.UUID
    filename: str
    text: str
    score: float
    metadata: dict[str, Any]
    similarity: float | None = Field(
        default=None,
        description="Cosine similarity to the query (vector and hybrid modes).",
    )
    keyword_rank: float | None = Field(
        default=None,
        description="BM25 score, when the chunk was in the keyword list (keyword and hybrid).",
    )


class SearchResponse(BaseModel):
    query: str
    mode: SearchMode
    results: list[SearchResult]


def search_query(collection_id: str, body: SearchRequest) -> SearchQuery:
    """The body as the search service's request value."""
    return SearchQuery(
        collection_id=collection_id,
        text=body.query,
        k=body.k,
        mode=body.mode,
        filters=body.filters,
        min_score=body.min_score,
        api_key=body.api_key,
    )


def search_response(body: SearchRequest, hits: list[SearchHit]) -> SearchResponse:
    return SearchResponse(
        query=body.query,
        mode=body.mode,
        results=[SearchResult.model_validate(hit) for hit in hits],
    )
