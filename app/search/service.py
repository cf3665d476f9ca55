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
from app.processing.normalization import normalize_text
from app.search.filters import Filter, check_size, compile_filter
from app.search.plan import SearchPlan
from app.search.repository import SearchRepository

logger = logging.getLogger(__name__)

SearchMode = Literal["vector", "keyword", "hybrid"]


@dataclass(frozen=True)
class SearchQuery:
    """What a caller asks: the k best chunks of one collection for a text."""

    collection_id: str
    text: str
    k: int = 4
    mode: SearchMode = "hybrid"
    filters: Filter | None = None
    min_score: float | None = None
    # The caller's own provider key for the query's embedding (never stored).
    api_key: str | None = None


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

    async def search(self, session: AsyncSession, query: SearchQuery) -> list[SearchHit]:
        """The k best chunks of the collection for the query's text, best first."""
        if not query.text.strip():
            raise UnprocessableContent("query is empty")
        search = self.with_api_key(query.api_key)
        vector = await search.embed_query(query.text) if query.mode != "keyword" else None
        hits = await self.search_by_vector(session, query, vector)
        if not hits:
            # Hits prove the collection exists; looking it up only when there are none
            # saves a round trip on every query (benchmark 4's HTTP overhead).
            await get_collection(session, query.collection_id)
        return hits

    async def search_by_vector(
        self,
        session: AsyncSession,
        query: SearchQuery,
        vector: npt.NDArray[np.float32] | None,
    ) -> list[SearchHit]:
        """Search with a vector the caller already has (the text serves keyword parts)."""
        if query.filters is not None:
            check_size(query.filters)
        plan = SearchPlan(
            collection_id=query.collection_id,
            k=query.k,
            vector=vector,
            # Folded as the stored text was, so a ligature in a question finds plain letters.
            text=normalize_text(query.text) or None,
            condition=compile_filter(query.filters) if query.filters is not None else None,
            candidates=max(query.k, self.settings.search_candidates),
            rrf_k=self.settings.rrf_k,
            keyword_weight=self.settings.rrf_keyword_weight,
            language=self.settings.text_search_config,
            bm25_k1=self.settings.bm25_k1,
            bm25_b=self.settings.bm25_b,
            bm25_depth=self.settings.bm25_depth,
            bm25_exact_postings=self.settings.bm25_exact_postings,
            bm25_exact=self.settings.bm25_exact,
            vector_rerank_candidates=self.settings.vector_rerank_candidates,
        )
        repository = SearchRepository(session)
        run = {
            "vector": repository.vector,
            "keyword": repository.keyword,
            "hybrid": repository.hybrid,
        }[query.mode]
        rows = await run(plan)
        # A vector index that gave up, or BM25 candidates of which fewer than k passed the
        # filter (or the phrases and exclusions): count every matching row exactly.
        narrowed = plan.keyword_condition if query.mode == "keyword" else plan.condition
        if narrowed is not None and len(rows) < query.k:
            logger.info("search: %d of %d rows from the index; exact scan", len(rows), query.k)
            rows = await run(replace(plan, exact=True))
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
        if query.min_score is not None:
            hits = [hit for hit in hits if hit.score >= query.min_score]
        return hits
