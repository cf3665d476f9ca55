import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.llm.client import RequestApiKey
from app.search.filters import Filter
from app.search.service import SearchMode


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=4, ge=1, le=100, description="How many chunks to return.")
    mode: SearchMode = Field(
        default="hybrid", description="vector, keyword or hybrid (both, fused)."
    )
    filters: Filter | None = Field(
        default=None,
        description="OpenAI-style filter on chunk metadata; keys `document_id` and "
        "`filename` filter on the document.",
    )
    min_score: float | None = Field(
        default=None,
        description="Drop results scoring below this (cosine similarity for vector, "
        "ts_rank for keyword, fused rank score for hybrid).",
    )
    api_key: RequestApiKey | None = Field(
        default=None, description="OpenAI key to embed the query with."
    )


class CollectionSearchRequest(SearchRequest):
    session_id: str = Field(
        min_length=1, description="The collection (the original app's session) to search."
    )


class SearchResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    chunk_id: int
    document_id: uuid.UUID
    filename: str
    text: str
    score: float
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    query: str
    mode: SearchMode
    results: list[SearchResult]
