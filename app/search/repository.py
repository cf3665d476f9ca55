"""Search SQL: vector (HNSW, cosine), keyword (BM25) and hybrid (reciprocal rank fusion).

Each mode is one statement, so hybrid search is one round trip: two ranked
CTEs fused with weight/(rrf_k + rank), as in pgvector-python's hybrid_search
example (with a weight for the keyword list, see benchmark 7). Connections
run with `hnsw.iterative_scan = relaxed_order`, so a filtered vector search
keeps walking the index until it has its rows; the results are re-sorted by
distance because that mode may return them slightly out of order.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    CompoundSelect,
    Float,
    Integer,
    and_,
    bindparam,
    cast,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from app.db.models import Chunk, Document
from app.db.types import indexed_cosine_distance
from app.search import bm25
from app.search.plan import RESULT_COLUMNS, AnySelect, SearchPlan, SearchRows, scoped

__all__ = ["SearchPlan", "SearchRepository"]


def _distance(vector: Any, exact: bool, dimensions: int) -> ColumnElement[float]:
    if exact:
        # Full precision, and `+ 0` hides the expression from the HNSW index, forcing an
        # exact scan.
        full: ColumnElement[float] = Chunk.embedding.cosine_distance(vector)
        return full + 0
    return indexed_cosine_distance(Chunk.embedding, vector, dimensions)


def _nearest(
    columns: Sequence[Any],
    scope: tuple[str | BindParameter[str], ColumnElement[bool] | None],
    distances: tuple[ColumnElement[float], ColumnElement[float]],
    shortlist: int | BindParameter[int],
    exact: bool,
) -> CTE:
    """The `shortlist` chunks of the collection (scope = (collection_id, condition)) nearest
    by the index's distance (distances = (indexed, full)), as the CTE `nearest`.

    Chunks that a write has not yet handed to the graph (`in_graph` false, see
    app/document/index_builds.py) are outside the partial HNSW index: the best
    `shortlist` of those few, by an exact scan of their full vectors, join the graph's,
    so a search finds every chunk committed. An exact search scans everything at once.
    """
    collection_id, condition = scope
    indexed, full = distances
    if exact:
        return _materialized(
            scoped(select(*columns), collection_id, condition).order_by(indexed).limit(shortlist)
        )
    graph = scoped(
        select(*columns),
        collection_id,
        and_(Chunk.in_graph) if condition is None else and_(condition, Chunk.in_graph),
    )
    # The pending chunks' nearest ids, from `chunks` alone: joined to `documents` first,
    # PostgreSQL (whose statistics may not have seen these chunks yet) hashed every pending
    # row, vectors included, and spilled to disk (168 ms at 10,000 pending, 1,536-d).
    pending_ids = select(Chunk.id).where(Chunk.collection_id == collection_id, ~Chunk.in_graph)
    if condition is not None:
        of_document = select(Document.id).where(Document.id == Chunk.document_id, condition)
        pending_ids = pending_ids.where(of_document.exists())
    pending_ids = pending_ids.order_by(full).limit(shortlist).correlate(None)
    pending = scoped(select(*columns), collection_id, Chunk.id.in_(pending_ids.scalar_subquery()))
    return _materialized(union_all(graph.order_by(indexed).limit(shortlist), pending))


def _materialized(nearest: AnySelect | CompoundSelect[*tuple[Any, ...]]) -> CTE:
    """The shortlist as the CTE `nearest`, computed once (its rows are re-ranked)."""
    return nearest.cte("nearest").prefix_with("MATERIALIZED")


def _vector_statement(
    collection_id: str | BindParameter[str],
    limits: tuple[int | BindParameter[int], int | BindParameter[int]],
    distance: ColumnElement[float],
    vector: Any,
    condition: ColumnElement[bool] | None = None,
    exact: bool = False,
) -> AnySelect:
    """The `k` nearest chunks among the index's best `shortlist` (limits = (shortlist, k)),
    re-ranked and scored by their full vectors' cosine similarity (for an index of full
    vectors, shortlist = k and the re-rank keeps the same rows)."""
    shortlist, k = limits
    full_distance = Chunk.embedding.cosine_distance(vector)
    nearest = _nearest(
        (*RESULT_COLUMNS, distance.label("distance"), (1 - full_distance).label("similarity")),
        (collection_id, condition),
        (distance, full_distance),
        shortlist,
        exact,
    )
    return (
        select(
            *(nearest.c[name] for name in ("id", "document_id", "filename", "text", "metadata")),
            nearest.c.similarity.label("score"),
            nearest.c.similarity,
            cast(literal(None), Float).label("keyword_rank"),
        )
        .order_by(nearest.c.similarity.desc(), nearest.c.id)
        .limit(k)
    )


@cache
def _plain_vector_statement(dimensions: int) -> AnySelect:
    """The unfiltered index search, built once with its values as bind parameters.

    Building the statement took about 1.2 ms of SQLAlchemy work per search
    (benchmark 4); only filtered and exact searches still pay it.
    """
    query_vector: BindParameter[Any] = bindparam("query_vector")
    return _vector_statement(
        bindparam("collection_id"),
        (bindparam("shortlist"), bindparam("k")),
        _distance(query_vector, exact=False, dimensions=dimensions),
        query_vector,
    )


# Readable: the index is not deferred, and its table is one of keyword_postings' partitions
# (attached by the same commit that cleared `deferred`).
_POSTINGS_TABLE = text("""
    SELECT k.postings_key,
           NOT k.deferred AND EXISTS (
               SELECT 1 FROM pg_inherits i
               WHERE i.inhrelid = to_regclass(keyword_partition_name(k.postings_key))
                 AND i.inhparent = 'keyword_postings'::regclass AND NOT i.inhdetachpending
           )
    FROM keyword_collections k
    WHERE k.collection_id = :collection_id
""")


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

    async def _postings_table(self, query: SearchPlan) -> bm25.PostingsTable:
        """The collection's table of BM25 postings (migration 0017), looked up in a round
        trip of its own. Its key, named in the search's statement as a parameter, prunes
        the postings to that table when the statement is planned (as a subquery, every
        collection's table would be planned and opened). And a table found here is in the
        plan: a search that finds none scores the chunks from their words (bm25.py)."""
        connection = await self.session.connection()
        found = (
            await connection.execute(_POSTINGS_TABLE, {"collection_id": query.collection_id})
        ).one_or_none()
        if found is None:
            return bm25.PostingsTable(None, readable=False)
        return bm25.PostingsTable(found[0], readable=bool(found[1]))

    async def vector(self, query: SearchPlan) -> SearchRows:
        """Nearest chunks by cosine distance; score = cosine similarity."""
        if query.condition is None and not query.exact:
            parameters = {
                "collection_id": query.collection_id,
                "shortlist": query.vector_shortlist(query.k),
                "k": query.k,
                "query_vector": query.vector,
            }
            return await self._rows(_plain_vector_statement(query.dimensions), parameters)
        distance = _distance(query.vector, query.exact, query.dimensions)
        limits = (query.vector_shortlist(query.k), query.k)
        statement = _vector_statement(
            query.collection_id, limits, distance, query.vector, query.condition, query.exact
        )
        return await self._rows(statement)

    async def keyword(self, query: SearchPlan) -> SearchRows:
        """Chunks holding the query's words, best BM25 score first (app/search/bm25.py)."""
        condition = query.keyword_condition
        exhaustive = query.exact or query.bm25_exact
        statement = (
            _plain_keyword_statement(exhaustive)
            if condition is None
            else _keyword_statement(condition, exhaustive)
        )
        parameters = bm25.parameters(query, query.k, await self._postings_table(query))
        return await self._rows(statement, parameters)

    async def hybrid(self, query: SearchPlan) -> SearchRows:
        """Both lists fused by reciprocal rank, w/(rrf_k + rank) each, normalised to 0-1:
        1 means first in both lists, and a chunk first in one list only scores 1/(1 + w) or
        w/(1 + w) of that."""
        exhaustive = query.exact or query.bm25_exact
        plain = query.condition is None and query.keyword_condition is None and not query.exact
        statement = (
            _plain_hybrid_statement(exhaustive, query.dimensions)
            if plain
            else _hybrid_statement(
                query.condition, query.keyword_condition, query.exact, exhaustive, query.dimensions
            )
        )
        parameters = {
            **bm25.parameters(query, query.candidates, await self._postings_table(query)),
            "query_vector": query.vector,
            "shortlist": query.vector_shortlist(query.candidates),
            "candidates": query.candidates,
            "rrf_k": float(query.rrf_k),
            "keyword_weight": float(query.keyword_weight),
            "k": query.k,
        }
        return await self._rows(statement, parameters)


def _keyword_statement(condition: ColumnElement[bool] | None, exhaustive: bool) -> AnySelect:
    ranked = bm25.ranked_chunks(condition, exhaustive)
    return (
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


@cache
def _plain_keyword_statement(exhaustive: bool) -> AnySelect:
    """The unfiltered keyword search, built once: building and compiling it took about
    7 ms of SQLAlchemy work, as long as running it at 20,000 chunks."""
    return _keyword_statement(None, exhaustive)


def _hybrid_statement(
    condition: ColumnElement[bool] | None,
    keyword_condition: ColumnElement[bool] | None,
    exact: bool,
    exhaustive: bool,
    dimensions: int,
) -> AnySelect:
    query_vector: BindParameter[Any] = bindparam("query_vector")
    distance = _distance(query_vector, exact, dimensions)
    full_distance = Chunk.embedding.cosine_distance(query_vector)
    nearest = _nearest(
        (Chunk.id, distance.label("distance"), full_distance.label("full_distance")),
        (bindparam("collection_id"), condition),
        (distance, full_distance),
        bindparam("shortlist", type_=Integer),
        exact,
    )
    # The index's best `shortlist`, re-ranked by the full vectors (the same rows, when
    # the index holds them: shortlist = candidates).
    reranked = (
        select(nearest.c.id, nearest.c.full_distance)
        .order_by(nearest.c.full_distance, nearest.c.id)
        .limit(bindparam("candidates", type_=Integer))
        .cte("reranked")
    )
    semantic = select(
        reranked.c.id,
        (1 - reranked.c.full_distance).label("similarity"),
        func.rank().over(order_by=reranked.c.full_distance).label("rank"),
    ).cte("semantic")
    ranked = bm25.ranked_chunks(keyword_condition, exhaustive)
    keyword = select(
        ranked.c.id,
        ranked.c.score.label("keyword_rank"),
        func.rank().over(order_by=ranked.c.score.desc()).label("rank"),
    ).cte("keyword")
    rrf = bindparam("rrf_k", type_=Float)
    keyword_weight = bindparam("keyword_weight", type_=Float)
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
        .limit(bindparam("k", type_=Integer))
        .cte("fused")
    )
    return (
        select(
            *RESULT_COLUMNS,
            fused.c.score,
            # For every result, also those only the keyword list found.
            (1 - Chunk.embedding.cosine_distance(query_vector)).label("similarity"),
            fused.c.keyword_rank,
        )
        .join(fused, fused.c.id == Chunk.id)
        .join(Document, Document.id == Chunk.document_id)
        .order_by(fused.c.score.desc(), Chunk.id)
    )


@cache
def _plain_hybrid_statement(exhaustive: bool, dimensions: int) -> AnySelect:
    """The unfiltered hybrid search, built once (as _plain_keyword_statement)."""
    return _hybrid_statement(None, None, exact=False, exhaustive=exhaustive, dimensions=dimensions)
