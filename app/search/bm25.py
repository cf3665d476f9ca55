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
index serves a word's postings best first. A search takes the best
`depth` postings of each query word as candidates, then scores each
candidate exactly by probing the primary key (chunk_id, term_id) for every
query word. A chunk that is in no word's best `depth` is missed: benchmark 4
measures the top-10 overlap with exhaustive BM25 (`RAGSTORE_BM25_EXACT`,
which scores every posting of the query words).

A filter or web-search syntax (phrases, exclusions) is applied to the
candidates; when fewer than k pass, the search service asks again with
`exact`, which scores every chunk that passes (see SearchService).
"""

from typing import Any

from sqlalchemy import Float, cast, func, literal, select, true
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import CTE

from app.db.models import Chunk, Document, KeywordCollection, KeywordPosting, KeywordTerm
from app.search.plan import SearchPlan


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
            condition = None
        scores = postings.add_columns(
            func.sum(weight(KeywordPosting.term_frequency, KeywordPosting.chunk_length)).label(
                "score"
            )
        ).group_by(KeywordPosting.chunk_id)
    else:
        best = (
            select(KeywordPosting.chunk_id)
            .where(KeywordPosting.term_id == query_terms.c.id)
            .order_by(KeywordPosting.impact.desc())
            .limit(plan.bm25_depth)
            .lateral("best_postings")
        )
        candidates = (
            select(best.c.chunk_id)
            .select_from(query_terms)
            .join(best, true())
            .distinct()
            .cte("candidates")
            .prefix_with("MATERIALIZED")
        )
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
        scores = (
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
    scored = scores.cte("keyword_scores")
    ranked = select(scored.c.id, scored.c.score)
    if condition is not None:
        ranked = (
            ranked.join(Chunk, Chunk.id == scored.c.id)
            .join(Document, Document.id == Chunk.document_id)
            .where(condition)
        )
    return ranked.order_by(scored.c.score.desc(), scored.c.id).limit(limit).cte("keyword_ranked")
