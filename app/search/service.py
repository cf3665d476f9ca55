"""Finding the chunks that answer a query: vector, keyword or hybrid, with filters."""

import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncSession

from app.collection.service import get_collection
from app.core.config import Settings
from app.core.errors import UnprocessableContent
from app.embeddings.base import EmbeddingModel
from app.search.filters import Filter, check_size, compile_filter
from app.search.repository import SearchQuery, SearchRepository

logger = logging.getLogger(__name__)

SearchMode = Literal["vector", "keyword", "hybrid"]


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: uuid.UUID
    filename: str
    text: str
    score: float
    metadata: dict[str, Any]
    # The parts behind a hybrid score: cosine similarity and keyword rank (None
    # where the chunk was not in that list).
    similarity: float | None
    keyword_rank: float | None


class SearchService:
    """Embeds queries (caching repeated ones) and runs them in one collection."""

    def __init__(self, embedding_model: EmbeddingModel, settings: Settings) -> None:
        self.embedding_model = embedding_model
        self.settings = settings
        self._query_vectors: LRUCache[str, npt.NDArray[np.float32]] = LRUCache(
            maxsize=max(settings.query_cache_size, 1)
        )

    def with_api_key(self, api_key: str | None) -> "SearchService":
        if not api_key:
            return self
        clone = SearchService(self.embedding_model.with_api_key(api_key), self.settings)
        clone._query_vectors = self._query_vectors
        return clone

    async def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        cached = self._query_vectors.get(text)
        if cached is None:
            cached = await self.embedding_model.aget_embedding(text)
            if self.settings.query_cache_size:
                self._query_vectors[text] = cached
        return cached

    async def search(
        self,
        session: AsyncSession,
        collection_id: str,
        query: str,
        k: int,
        mode: SearchMode = "hybrid",
        filters: Filter | None = None,
        min_score: float | None = None,
    ) -> list[SearchHit]:
        """The k best chunks of the collection for `query`, best first."""
        if not query.strip():
            raise UnprocessableContent("query is empty")
        vector = await self.embed_query(query) if mode != "keyword" else None
        hits = await self.search_by_vector(
            session, collection_id, vector, k, mode, query, filters, min_score
        )
        if not hits:
            # Hits prove the collection exists; looking it up only when there are none
            # saves a round trip on every query (benchmark 4's HTTP overhead).
            await get_collection(session, collection_id)
        return hits

    async def search_by_vector(
        self,
        session: AsyncSession,
        collection_id: str,
        vector: npt.NDArray[np.float32] | None,
        k: int,
        mode: SearchMode = "vector",
        text: str | None = None,
        filters: Filter | None = None,
        min_score: float | None = None,
    ) -> list[SearchHit]:
        """Search with a vector the caller already has (and text, for keyword parts)."""
        if filters is not None:
            check_size(filters)
        search_query = SearchQuery(
            collection_id=collection_id,
            k=k,
            vector=vector,
            text=text,
            condition=compile_filter(filters) if filters is not None else None,
            candidates=max(k, self.settings.search_candidates),
            rrf_k=self.settings.rrf_k,
            keyword_weight=self.settings.rrf_keyword_weight,
            language=self.settings.text_search_config,
        )
        repository = SearchRepository(session)
        run = {
            "vector": repository.vector,
            "keyword": repository.keyword,
            "hybrid": repository.hybrid,
        }[mode]
        rows = await run(search_query)
        if filters is not None and mode != "keyword" and len(rows) < k:
            # The index gave up before k matches: count every matching row exactly.
            logger.info("search: %d of %d rows from the index; exact scan", len(rows), k)
            rows = await run(replace(search_query, exact=True))
        hits = [
            SearchHit(
                chunk_id=row.id,
                document_id=row.document_id,
                filename=row.filename,
                text=row.text,
                score=float(row.score),
                metadata=row.metadata,
                similarity=None if row.similarity is None else float(row.similarity),
                keyword_rank=None if row.keyword_rank is None else float(row.keyword_rank),
            )
            for row in rows
        ]
        if min_score is not None:
            hits = [hit for hit in hits if hit.score >= min_score]
        return hits
