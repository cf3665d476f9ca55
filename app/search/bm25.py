"""BM25 over the keyword index of migration 0007, in plain PostgreSQL.

The score of a chunk is Lucene's BM25 with the collection's own statistics:

    sum over query words w in the chunk of
        idf(w) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average_length))
    idf(w) = ln(1 + (chunks - df(w) + 0.5) / (df(w) + 0.5))

where tf is the word's frequency in the chunk, df(w) how many chunks of the
collection hold it, and lengths count words (stop words excluded, as in
`to_tsvector`).

Reading every posting of a common word would make a search's cost grow with
how many chunks share that word (a GIN index finds them but cannot rank
them). Each posting carries `impact`, its weight without the IDF, and an
index serves a word's postings best first. A search reads the best `depth`
postings of each query word, bounds each listed chunk's score from above,
and scores the best few by that bound exactly (see _shortlist_scores). A
chunk in no word's best `depth` is missed: benchmark 4 measures the top-10
overlap with exhaustive BM25 (`RAGSTORE_BM25_EXACT`, which scores every
posting of the query words).

A filter or web-search syntax (phrases, exclusions) is applied to the
candidates; when fewer than k pass, the search service asks again with
`exact`, which scores every chunk that passes (see SearchService).
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, select, true
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import CTE

from app.db.models import Chunk, Document, KeywordCollection, KeywordPosting, KeywordTerm
from app.search.plan import AnySelect, SearchPlan

# Chunks scored exactly per result wanted, chosen by their upper bound.
SHORTLIST_FACTOR = 3
MIN_SHORTLIST = 30


def ranked_chunks(plan: SearchPlan, limit: int) -> CTE:
    """The `limit` best chunks by BM25 that pass the plan's conditions: (id, score)."""
    statistics = (
        select(
            cast(KeywordCollection.chunk_count, Float).label("chunks"),
            (
                cast(KeywordCollection.total_length, Float)
                / func.greatest(KeywordCollection.chunk_count, 1)
            ).label("average_length"),
        )
        .where(KeywordCollection.collection_id == plan.collection_id)
        .cte("keyword_statistics")
    )
    config = cast(literal(plan.language), REGCONFIG)
    words = func.tsvector_to_array(func.to_tsvector(config, plan.ranked_words))
    frequency = cast(KeywordTerm.document_frequency, Float)
    idf = func.ln(1.0 + (statistics.c.chunks - frequency + 0.5) / (frequency + 0.5))
    query_terms = (
        select(KeywordTerm.id, idf.label("idf"))
        .select_from(KeywordTerm)
        .join(statistics, true())
        .where(
            KeywordTerm.collection_id == plan.collection_id,
            KeywordTerm.term == func.any(words),
        )
        .cte("query_terms")
        .prefix_with("MATERIALIZED")
    )

    def weight(term_frequency: Any, length: Any) -> ColumnElement[Any]:
        tf = cast(term_frequency, Float)
        k1, b = literal(plan.bm25_k1), literal(plan.bm25_b)
        normalised = k1 * (1.0 - b + b * cast(length, Float) / statistics.c.average_length)
        return query_terms.c.idf * tf * (k1 + 1.0) / (tf + normalised)

    condition = plan.keyword_condition
    if plan.exact or plan.bm25_exact:
        postings = (
            select(KeywordPosting.chunk_id.label("id"))
            .select_from(query_terms)
            .join(KeywordPosting, KeywordPosting.term_id == query_terms.c.id)
            .join(statistics, true())
        )
        if condition is not None:
            # Only chunks that pass: the planner may start from the filter's rows.
            postings = (
                postings.join(Chunk, Chunk.id == KeywordPosting.chunk_id)
                .join(Document, Document.id == Chunk.document_id)
                .where(condition)
            )
        scores = postings.add_columns(
            func.sum(weight(KeywordPosting.term_frequency, KeywordPosting.chunk_length)).label(
                "score"
            )
        ).group_by(KeywordPosting.chunk_id)
    else:
        scores = _shortlist_scores(plan, limit, (query_terms, statistics), weight, condition)
    scored = scores.cte("keyword_scores")
    ranked = select(scored.c.id, scored.c.score)
    return ranked.order_by(scored.c.score.desc(), scored.c.id).limit(limit).cte("keyword_ranked")


def _shortlist_scores(
    plan: SearchPlan,
    limit: int,
    sources: tuple[CTE, CTE],
    weight: Callable[[Any, Any], ColumnElement[Any]],
    condition: ColumnElement[bool] | None,
) -> AnySelect:
    """Exact scores of the chunks most likely to rank, from each word's best postings.

    1. Each query word's best `depth` postings by impact (an index-only scan of
       (term_id, impact DESC) INCLUDE (chunk_id)).
    2. Each listed chunk's upper bound: idf * impact for the words that list it, and
       for each other word the impact at the end of its list (a chunk that list does
       not reach weighs at most that), or 0 when the list was read to its end.
    3. The best `shortlist` chunks by that bound (passing the condition, if any)
       are scored exactly, one primary-key probe per word, with the current
       average length and the plan's k1 and b.
    """
    query_terms, statistics = sources
    best = (
        select(KeywordPosting.chunk_id, KeywordPosting.impact)
        .where(KeywordPosting.term_id == query_terms.c.id)
        .order_by(KeywordPosting.impact.desc())
        .limit(plan.bm25_depth)
        .lateral("best_postings")
    )
    listed = (
        select(
            query_terms.c.id.label("term_id"),
            (query_terms.c.idf * best.c.impact).label("weight"),
            best.c.chunk_id,
        )
        .select_from(query_terms)
        .join(best, true())
        .cte("listed")
        .prefix_with("MATERIALIZED")
    )
    floors = (
        select(
            listed.c.term_id,
            case(
                (func.count() < plan.bm25_depth, literal(0.0)),
                else_=func.min(listed.c.weight),
            ).label("floor"),
        )
        .group_by(listed.c.term_id)
        .cte("floors")
    )
    every_floor = select(func.coalesce(func.sum(floors.c.floor), 0.0)).scalar_subquery()
    bound = func.sum(listed.c.weight) - func.sum(floors.c.floor) + every_floor
    bounds = (
        select(listed.c.chunk_id)
        .join(floors, floors.c.term_id == listed.c.term_id)
        .group_by(listed.c.chunk_id)
        .order_by(bound.desc(), listed.c.chunk_id)
        .limit(max(SHORTLIST_FACTOR * limit, MIN_SHORTLIST))
    )
    if condition is not None:
        bounds = (
            bounds.join(Chunk, Chunk.id == listed.c.chunk_id)
            .join(Document, Document.id == Chunk.document_id)
            .where(condition)
        )
    candidates = bounds.cte("candidates").prefix_with("MATERIALIZED")
    # One primary-key probe per (candidate, query word): lateral, so the planner
    # cannot read each candidate's every posting instead.
    posting = (
        select(KeywordPosting.term_frequency, KeywordPosting.chunk_length)
        .where(
            KeywordPosting.chunk_id == candidates.c.chunk_id,
            KeywordPosting.term_id == query_terms.c.id,
        )
        .lateral("posting")
    )
    return (
        select(
            candidates.c.chunk_id.label("id"),
            func.sum(weight(posting.c.term_frequency, posting.c.chunk_length)).label("score"),
        )
        .select_from(candidates)
        .join(query_terms, true())
        .join(posting, true())
        .join(statistics, true())
        .group_by(candidates.c.chunk_id)
    )
