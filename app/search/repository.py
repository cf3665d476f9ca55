"""Search SQL: vector (HNSW, cosine), keyword (BM25) and hybrid (reciprocal rank fusion).

Each mode is one statement, so hybrid search is one round trip: two ranked
CTEs fused with weight/(rrf_k + rank), as in pgvector-python's hybrid_search
example (with a weight for the keyword list, see benchmark 7). Connections
run with `hnsw.iterative_scan = relaxed_order`, so a filtered vector search
keeps walking the index until it has its rows; the results are re-sorted by
distance because that mode may return them slightly out of order.
"""

from functools import cache
from typing import Any

from sqlalchemy import Float, bindparam, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from app.db.models import Chunk, Document
from app.search import bm25
from app.search.plan import RESULT_COLUMNS, AnySelect, SearchPlan, SearchRows, scoped

__all__ = ["SearchPlan", "SearchRepository"]


def _distance(vector: Any, exact: bool) -> ColumnElement[float]:
    distance: ColumnElement[float] = Chunk.embedding.cosine_distance(vector)
    # `+ 0` hides the expression from the HNSW index, forcing an exact scan.
    return distance + 0 if exact else distance


def _vector_statement(
    collection_id: str | BindParameter[str],
    k: int | BindParameter[int],
    distance: ColumnElement[float],
    condition: ColumnElement[bool] | None = None,
) -> AnySelect:
    nearest = (
        scoped(select(*RESULT_COLUMNS, distance.label("distance")), collection_id, condition)
        .order_by(distance)
        .limit(k)
        .cte("nearest")
        .prefix_with("MATERIALIZED")
    )
    return select(
        *(nearest.c[name] for name in ("id", "document_id", "filename", "text", "metadata")),
        (1 - nearest.c.distance).label("score"),
        (1 - nearest.c.distance).label("similarity"),
        cast(literal(None), Float).label("keyword_rank"),
    ).order_by(nearest.c.distance, nearest.c.id)


@cache
def _plain_vector_statement() -> AnySelect:
    """The unfiltered index search, built once with its values as bind parameters.

    Building the statement took about 1.2 ms of SQLAlchemy work per search
    (benchmark 4); only filtered and exact searches still pay it.
    """
    return _vector_statement(
        bindparam("collection_id"),
        bindparam("k"),
        _distance(bindparam("query_vector"), exact=False),
    )


class SearchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _rows(
        self, statement: AnySelect, parameters: dict[str, Any] | None = None
    ) -> SearchRows:
        # Core execution: these rows are columns, not ORM objects, and the ORM's result
        # machinery took ~0.1 ms per search (benchmark 4).
        connection = await self.session.connection()
        return (await connection.execute(statement, parameters)).all()

    async def vector(self, query: SearchPlan) -> SearchRows:
        """Nearest chunks by cosine distance; score = cosine similarity."""
        if query.condition is None and not query.exact:
            parameters = {
                "collection_id": query.collection_id,
                "k": query.k,
                "query_vector": query.vector,
            }
            return await self._rows(_plain_vector_statement(), parameters)
        distance = _distance(query.vector, query.exact)
        statement = _vector_statement(query.collection_id, query.k, distance, query.condition)
        return await self._rows(statement)

    async def keyword(self, query: SearchPlan) -> SearchRows:
        """Chunks holding the query's words, best BM25 score first (app/search/bm25.py)."""
        ranked = bm25.ranked_chunks(query, query.k)
        statement = (
            select(
                *RESULT_COLUMNS,
                ranked.c.score,
                cast(literal(None), Float).label("similarity"),
                ranked.c.score.label("keyword_rank"),
            )
            .join(ranked, ranked.c.id == Chunk.id)
            .join(Document, Document.id == Chunk.document_id)
            .order_by(ranked.c.score.desc(), Chunk.id)
        )
        return await self._rows(statement)

    async def hybrid(self, query: SearchPlan) -> SearchRows:
        """Both lists fused by reciprocal rank, w/(rrf_k + rank) each, normalised to 0-1:
        1 means first in both lists, and a chunk first in one list only scores 1/(1 + w) or
        w/(1 + w) of that."""
        distance = _distance(query.vector, query.exact)
        nearest = (
            scoped(
                select(Chunk.id, distance.label("distance")), query.collection_id, query.condition
            )
            .order_by(distance)
            .limit(query.candidates)
            .cte("nearest")
            .prefix_with("MATERIALIZED")
        )
        semantic = select(
            nearest.c.id,
            (1 - nearest.c.distance).label("similarity"),
            func.rank().over(order_by=nearest.c.distance).label("rank"),
        ).cte("semantic")
        ranked = bm25.ranked_chunks(query, query.candidates)
        keyword = select(
            ranked.c.id,
            ranked.c.score.label("keyword_rank"),
            func.rank().over(order_by=ranked.c.score.desc()).label("rank"),
        ).cte("keyword")
        rrf = literal(float(query.rrf_k))
        keyword_weight = literal(float(query.keyword_weight))
        best = (1.0 + keyword_weight) / (rrf + 1.0)
        score = (
            func.coalesce(1.0 / (rrf + semantic.c.rank), 0.0)
            + func.coalesce(keyword_weight / (rrf + keyword.c.rank), 0.0)
        ) / best
        fused = (
            select(
                func.coalesce(semantic.c.id, keyword.c.id).label("id"),
                score.label("score"),
                semantic.c.similarity,
                keyword.c.keyword_rank,
            )
            .select_from(semantic.join(keyword, semantic.c.id == keyword.c.id, full=True))
            .order_by(score.desc())
            .limit(query.k)
            .cte("fused")
        )
        statement = (
            select(
                *RESULT_COLUMNS,
                fused.c.score,
                # For every result, also those only the keyword list found.
                (1 - Chunk.embedding.cosine_distance(query.vector)).label("similarity"),
                fused.c.keyword_rank,
            )
            .join(fused, fused.c.id == Chunk.id)
            .join(Document, Document.id == Chunk.document_id)
            .order_by(fused.c.score.desc(), Chunk.id)
        )
        return await self._rows(statement)
