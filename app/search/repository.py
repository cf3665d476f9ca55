"""Search SQL: vector (HNSW, cosine), keyword (tsvector) and hybrid (reciprocal rank fusion).

Each mode is one statement, so hybrid search is one round trip: two ranked
CTEs fused with weight/(rrf_k + rank), as in pgvector-python's hybrid_search
example (with a weight for the keyword list, see benchmark 7). Connections
run with `hnsw.iterative_scan = relaxed_order`, so a filtered vector search
keeps walking the index until it has its rows; the results are re-sorted by
distance because that mode may return them slightly out of order.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Float, Select, Text, bindparam, cast, func, literal, select
from sqlalchemy.dialects.postgresql import REGCONFIG, TSQUERY
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from app.db.models import Chunk, Document


@dataclass(frozen=True)
class SearchPlan:
    """The statement to run: a SearchQuery with its vector, compiled filter and tuning."""

    collection_id: str
    k: int
    vector: npt.NDArray[np.float32] | None = None
    text: str | None = None
    condition: ColumnElement[bool] | None = None
    candidates: int = 60
    rrf_k: int = 20
    keyword_weight: float = 1.0
    language: str = "english"
    # An exact scan: no index, every matching row compared. For filters so
    # selective that even an iterative index scan gives up before k rows.
    exact: bool = False


AnySelect = Select[*tuple[Any, ...]]
SearchRows = Sequence[Row[*tuple[Any, ...]]]


def _scoped(
    statement: AnySelect,
    collection_id: str | BindParameter[str],
    condition: ColumnElement[bool] | None,
) -> AnySelect:
    statement = statement.join(Document, Document.id == Chunk.document_id).where(
        Chunk.collection_id == collection_id
    )
    return statement.where(condition) if condition is not None else statement


def _distance(vector: Any, exact: bool) -> ColumnElement[float]:
    distance: ColumnElement[float] = Chunk.embedding.cosine_distance(vector)
    # `+ 0` hides the expression from the HNSW index, forcing an exact scan.
    return distance + 0 if exact else distance


# Quotes and a leading `-` are explicit web-search syntax (phrases, exclusions): the
# user wants those semantics. A plain "or" needs nothing: plain questions OR their words.
_OPERATORS = re.compile(r'"|(^|\s)-\w')


# ts_rank normalization 1 divides by 1 + log(chunk length): without it a long chunk
# outranks a short one just by repeating words (Cranfield keyword nDCG@10 0.299 -> 0.337).
_RANK_BY_LOG_LENGTH = 1


def _keyword_rank(tsquery: ColumnElement[Any]) -> ColumnElement[float]:
    return func.ts_rank(Chunk.text_search, tsquery, _RANK_BY_LOG_LENGTH)


def _tsquery(query: SearchPlan) -> ColumnElement[Any]:
    """Any of the question's words (stemmed, stop words dropped), or web-search syntax.

    websearch_to_tsquery ANDs every word, so a natural-language question
    rarely matches any chunk whole; ORing the words and ranking by ts_rank
    finds the chunks that share most of them (benchmark 7).
    """
    config = cast(literal(query.language), REGCONFIG)
    if query.text is None or _OPERATORS.search(query.text):
        return func.websearch_to_tsquery(config, query.text)
    every_word = cast(func.plainto_tsquery(config, query.text), Text)
    return cast(func.replace(every_word, " & ", " | "), TSQUERY)


_RESULT_COLUMNS = (
    Chunk.id,
    Chunk.document_id,
    Document.filename,
    Chunk.text,
    Chunk.metadata_.label("metadata"),
)


def _vector_statement(
    collection_id: str | BindParameter[str],
    k: int | BindParameter[int],
    distance: ColumnElement[float],
    condition: ColumnElement[bool] | None = None,
) -> AnySelect:
    nearest = (
        _scoped(select(*_RESULT_COLUMNS, distance.label("distance")), collection_id, condition)
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
        """Chunks matching the words of the query; score = ts_rank."""
        tsquery = _tsquery(query)
        rank = _keyword_rank(tsquery)
        statement = (
            _scoped(
                select(
                    *_RESULT_COLUMNS,
                    rank.label("score"),
                    cast(literal(None), Float).label("similarity"),
                    rank.label("keyword_rank"),
                ),
                query.collection_id,
                query.condition,
            )
            .where(Chunk.text_search.op("@@")(tsquery))
            .order_by(rank.desc(), Chunk.id)
            .limit(query.k)
        )
        return await self._rows(statement)

    async def hybrid(self, query: SearchPlan) -> SearchRows:
        """Both lists fused by reciprocal rank, w/(rrf_k + rank) each, normalised to 0-1:
        1 means first in both lists, and a chunk first in one list only scores 1/(1 + w) or
        w/(1 + w) of that."""
        distance = _distance(query.vector, query.exact)
        nearest = (
            _scoped(
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
        tsquery = _tsquery(query)
        text_rank = _keyword_rank(tsquery)
        keyword = (
            _scoped(
                select(
                    Chunk.id,
                    text_rank.label("keyword_rank"),
                    func.rank().over(order_by=text_rank.desc()).label("rank"),
                ),
                query.collection_id,
                query.condition,
            )
            .where(Chunk.text_search.op("@@")(tsquery))
            .order_by(text_rank.desc())
            .limit(query.candidates)
            .cte("keyword")
        )
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
                *_RESULT_COLUMNS,
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
