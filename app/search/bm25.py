"""BM25 over the keyword index of migration 0007, in plain PostgreSQL.

The score of a chunk is Lucene's BM25 with the collection's own statistics:

    sum over query words w in the chunk of
        idf(w) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average_length))
    idf(w) = ln(1 + (chunks - df(w) + 0.5) / (df(w) + 0.5))

where tf is the word's frequency in the chunk, df(w) how many chunks of the
collection hold it, and lengths count words (stop words excluded, as in
`to_tsvector`).

A question whose words have few postings in the collection (at most
`bm25_exact_postings`, 25,000 by default: about 10 ms of reading) is scored
exhaustively: every posting of its words, read from an index that covers the
frequency and length (migration 0008), so the result is exact BM25.

Past that budget, reading every posting of a common word would make a
search's cost grow with how many chunks share that word. Each posting carries
`impact`, its weight without the IDF, and an index serves a word's postings
best first. A search then reads the best `depth` postings of each query word,
bounds each listed chunk's score from above, and scores the best few exactly
(see _shortlist_scores). A chunk in no word's best `depth` is missed:
benchmark 4 measures the top-10 overlap with exhaustive BM25
(`RAGSTORE_BM25_EXACT`, which scores every posting of the query words
whatever their number).

A collection's first chunks get their postings just after their upload
answers (migration 0015, app/document/index_builds.py). Until then its
keyword index is `deferred`, and its chunks are scored from their words
(`text_search`) instead: the same BM25, exact, by a scan of the collection
(at most RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS chunks).

A filter or web-search syntax (phrases, exclusions) is applied to the
candidates; when fewer than k pass, the search service asks again with
`exact`, which scores every chunk that passes (see SearchService).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    Text,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, REGCONFIG
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import CTE, CompoundSelect

from app.db.models import Chunk, Document, KeywordCollection, KeywordPosting, KeywordTerm
from app.search.plan import AnySelect, SearchPlan

# BM25 of the chunks of a collection whose keyword index is deferred, from their words:
# one pass over the collection's chunks, each chunk's words unnested once for its length
# (in words, as the keyword index counts it, migration 0007) and its query words' counts.
_UNINDEXED_SQL = """
WITH query AS MATERIALIZED (
    SELECT tsvector_to_array(to_tsvector(CAST(:text_search_config AS regconfig),
                                         :keyword_words)) AS words
),
chunk_words AS MATERIALIZED (
    SELECT c.id, t.length, t.lexemes, t.frequencies
    FROM chunks c
    CROSS JOIN query q
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(greatest(cardinality(w.positions), 1)), 0)::float8 AS length,
               array_agg(w.lexeme) FILTER (WHERE w.lexeme = ANY(q.words)) AS lexemes,
               array_agg(greatest(cardinality(w.positions), 1)::float8)
                   FILTER (WHERE w.lexeme = ANY(q.words)) AS frequencies
        FROM unnest(c.text_search) w
    ) t
    WHERE c.collection_id = :collection_id
),
statistics AS (
    SELECT count(*)::float8 AS chunks,
           coalesce(sum(length), 0) / greatest(count(*), 1) AS average_length
    FROM chunk_words
),
occurrences AS MATERIALIZED (
    SELECT c.id, c.length, o.lexeme, o.frequency
    FROM chunk_words c
    CROSS JOIN LATERAL unnest(c.lexemes, c.frequencies) AS o (lexeme, frequency)
    WHERE c.lexemes IS NOT NULL
),
frequencies AS (
    SELECT lexeme, count(*)::float8 AS frequency FROM occurrences GROUP BY lexeme
)
SELECT o.id,
       sum(ln(1.0 + (s.chunks - f.frequency + 0.5) / (f.frequency + 0.5))
           * o.frequency * (:bm25_k1 + 1.0)
           / (o.frequency + :bm25_k1 * (1.0 - :bm25_b
                                         + :bm25_b * o.length / s.average_length))) AS score
FROM occurrences o
JOIN frequencies f USING (lexeme)
CROSS JOIN statistics s
GROUP BY o.id
"""
_UNINDEXED_SCORES = (
    text(_UNINDEXED_SQL)
    .bindparams(
        bindparam("collection_id", type_=Text),
        bindparam("keyword_words", type_=Text),
        bindparam("text_search_config", type_=Text),
        bindparam("bm25_k1", type_=Float),
        bindparam("bm25_b", type_=Float),
    )
    .columns(id=BigInteger, score=Float)
    .subquery("unindexed_scores")
)


@dataclass(frozen=True)
class PostingsTable:
    """A collection's table of postings, as a search finds it before it runs: its key
    (None without a statistics row), and whether it is attached with the index built."""

    key: int | None
    readable: bool


# Most chunks scored exactly per result wanted: those whose upper bound reaches the
# k-th best known score, highest bound first.
SHORTLIST_FACTOR = 5
MIN_SHORTLIST = 300


def parameters(plan: SearchPlan, limit: int, postings: PostingsTable) -> dict[str, Any]:
    """The values of ranked_chunks' bind parameters for a plan and a number of rows, with
    the collection's table of postings as the caller found it."""
    return {
        "collection_id": plan.collection_id,
        "postings_key": postings.key,
        "keyword_unindexed": not postings.readable,
        "keyword_words": plan.ranked_words,
        "text_search_config": plan.language,
        "bm25_k1": plan.bm25_k1,
        "bm25_b": plan.bm25_b,
        "bm25_depth": plan.bm25_depth,
        "bm25_exact_postings": plan.bm25_exact_postings,
        "keyword_limit": limit,
        "keyword_offset": limit - 1,
        "keyword_shortlist": max(SHORTLIST_FACTOR * limit, MIN_SHORTLIST),
    }


def ranked_chunks(condition: ColumnElement[bool] | None, exhaustive: bool) -> CTE:
    """The best chunks by BM25 that pass the condition: (id, score), `keyword_limit` rows.

    Every value is a bind parameter (see parameters()), so a statement without a
    condition is built and compiled once, not per search.
    """
    statistics = (
        select(
            cast(KeywordCollection.chunk_count, Float).label("chunks"),
            (
                cast(KeywordCollection.total_length, Float)
                / func.greatest(KeywordCollection.chunk_count, 1)
            ).label("average_length"),
            KeywordCollection.deferred,
        )
        .where(KeywordCollection.collection_id == bindparam("collection_id"))
        .cte("keyword_statistics")
    )
    config = cast(bindparam("text_search_config", type_=Text), REGCONFIG)
    words = func.tsvector_to_array(func.to_tsvector(config, bindparam("keyword_words", type_=Text)))
    frequency = cast(KeywordTerm.document_frequency, Float)
    idf = func.ln(1.0 + (statistics.c.chunks - frequency + 0.5) / (frequency + 0.5))
    query_terms = (
        select(KeywordTerm.id, idf.label("idf"), KeywordTerm.document_frequency.label("frequency"))
        .select_from(KeywordTerm)
        .join(statistics, true())
        .where(
            KeywordTerm.collection_id == bindparam("collection_id"),
            KeywordTerm.term == func.any(words),
        )
        .cte("query_terms")
        .prefix_with("MATERIALIZED")
    )

    def weight(term_frequency: Any, length: Any) -> ColumnElement[Any]:
        tf = cast(term_frequency, Float)
        k1 = bindparam("bm25_k1", type_=Float)
        b = bindparam("bm25_b", type_=Float)
        normalised = k1 * (1.0 - b + b * cast(length, Float) / statistics.c.average_length)
        return query_terms.c.idf * tf * (k1 + 1.0) / (tf + normalised)

    sources = (query_terms, statistics)
    # Scored from the chunks' words instead of postings: while the index is deferred, or
    # when the caller found its table of postings missing (`keyword_unindexed`). The table
    # is attached by the build's commit, which also clears `deferred`, and the planner
    # fixes a statement's tables when it plans it, before its snapshot is taken: a
    # statement planned just before that commit and run just after it would read no
    # postings and no words (it happened in CI). The caller looks for the table first.
    # Each WHERE is a one-time filter: one side runs, never both.
    deferred = func.coalesce(select(statistics.c.deferred).scalar_subquery(), false())
    from_words = or_(deferred, bindparam("keyword_unindexed", type_=Boolean))
    exact = _exhaustive_scores(sources, weight, condition).where(not_(from_words))
    unindexed = _unindexed_scores(condition).where(from_words)
    if exhaustive:
        scores: AnySelect | CompoundSelect[Any] = union_all(exact, unindexed)
    else:
        # A question whose words have few postings in the collection is scored
        # exhaustively, which is exact and as cheap; only past the budget are the best
        # postings of each word read instead. The planner runs one branch: each WHERE is
        # a one-time filter on the same initplan.
        postings = select(func.coalesce(func.sum(query_terms.c.frequency), 0)).scalar_subquery()
        budget = bindparam("bm25_exact_postings", type_=Integer)
        scores = union_all(
            exact.where(postings <= budget),
            _shortlist_scores(sources, weight, condition).where(
                not_(from_words), postings > budget
            ),
            unindexed,
        )
    scored = scores.cte("keyword_scores")
    return (
        select(scored.c.id, scored.c.score)
        .order_by(scored.c.score.desc(), scored.c.id)
        .limit(bindparam("keyword_limit", type_=Integer))
        .cte("keyword_ranked")
    )


def _in_collection() -> ColumnElement[bool]:
    """The postings of the searched collection: a parameter, not a subquery, so the planner
    reads its partition alone (migrations 0016 and 0017)."""
    return KeywordPosting.postings_key == bindparam("postings_key", type_=Integer)


def _exhaustive_scores(
    sources: tuple[CTE, CTE],
    weight: Callable[[Any, Any], ColumnElement[Any]],
    condition: ColumnElement[bool] | None,
) -> AnySelect:
    """Exact scores of every chunk holding a query word: each word's postings, read from
    (term_id, impact DESC) INCLUDE (term_frequency, chunk_id, chunk_length, postings_key) alone."""
    query_terms, statistics = sources
    postings = (
        select(KeywordPosting.chunk_id.label("id"))
        .select_from(query_terms)
        .join(KeywordPosting, KeywordPosting.term_id == query_terms.c.id)
        .join(statistics, true())
        .where(_in_collection())
    )
    if condition is not None:
        # Only chunks that pass: the planner may start from the filter's rows, and told
        # that they are the collection's, it reads only those (a filter's index spans
        # every collection).
        postings = (
            postings.join(Chunk, Chunk.id == KeywordPosting.chunk_id)
            .join(Document, Document.id == Chunk.document_id)
            .where(condition, Chunk.collection_id == bindparam("collection_id"))
        )
    return postings.add_columns(
        func.sum(weight(KeywordPosting.term_frequency, KeywordPosting.chunk_length)).label("score")
    ).group_by(KeywordPosting.chunk_id)


def _unindexed_scores(condition: ColumnElement[bool] | None) -> AnySelect:
    """Exact scores of the chunks holding a query word, from their words (a collection
    whose keyword index is deferred)."""
    scores = select(_UNINDEXED_SCORES.c.id, _UNINDEXED_SCORES.c.score)
    if condition is not None:
        scores = (
            scores.join(Chunk, Chunk.id == _UNINDEXED_SCORES.c.id)
            .join(Document, Document.id == Chunk.document_id)
            .where(condition, Chunk.collection_id == bindparam("collection_id"))
        )
    return scores


def _shortlist_scores(
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
    3. Of the chunks whose bound reaches the k-th best known part (k chunks score at
       least that), the `keyword_shortlist` with the best known parts (passing the
       condition, if any) are scored exactly: their postings of the query words by
       primary key, with the current average length and the plan's k1 and b.
    """
    query_terms, statistics = sources
    best = (
        select(KeywordPosting.chunk_id, KeywordPosting.impact)
        .where(KeywordPosting.term_id == query_terms.c.id, _in_collection())
        .order_by(KeywordPosting.impact.desc())
        .limit(bindparam("bm25_depth", type_=Integer))
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
                (func.count() < bindparam("bm25_depth", type_=Integer), literal(0.0)),
                else_=func.min(listed.c.weight),
            ).label("floor"),
        )
        .group_by(listed.c.term_id)
        .cte("floors")
    )
    every_floor = select(func.coalesce(func.sum(floors.c.floor), 0.0)).scalar_subquery()
    known = func.sum(listed.c.weight)
    per_chunk = (
        select(
            listed.c.chunk_id,
            known.label("known"),
            (known - func.sum(floors.c.floor) + every_floor).label("bound"),
        )
        .join(floors, floors.c.term_id == listed.c.term_id)
        .group_by(listed.c.chunk_id)
    )
    if condition is not None:
        per_chunk = (
            per_chunk.join(Chunk, Chunk.id == listed.c.chunk_id)
            .join(Document, Document.id == Chunk.document_id)
            .where(condition, Chunk.collection_id == bindparam("collection_id"))
        )
    bounds = per_chunk.cte("bounds").prefix_with("MATERIALIZED")
    # The k-th best known part: k chunks score at least this, so a chunk whose bound is
    # below it cannot rank (the threshold algorithm's stopping rule).
    threshold = (
        select(bounds.c.known)
        .order_by(bounds.c.known.desc())
        .offset(bindparam("keyword_offset", type_=Integer))
        .limit(1)
        .scalar_subquery()
    )
    candidates = (
        select(bounds.c.chunk_id)
        .where(bounds.c.bound >= func.coalesce(threshold, 0.0))
        # Best known part first: where one word's postings weigh about the same (most
        # chunks hold a word once), the bound is mostly other words' floors, and the
        # known part predicts the exact score better (top-10 overlap 0.45 -> 0.55 at
        # 100,000 chunks in benchmark 4, same cost).
        .order_by(bounds.c.known.desc(), bounds.c.bound.desc(), bounds.c.chunk_id)
        .limit(bindparam("keyword_shortlist", type_=Integer))
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    # The candidates' postings of the query words: one primary-key range per candidate,
    # `term_id = ANY(...)` in the index condition (a join would read every posting of
    # each candidate, 70 on average in benchmark 4, and keep 3).
    # Cast, so ANY takes it as one array rather than as a subquery's rows.
    term_ids = cast(select(func.array_agg(query_terms.c.id)).scalar_subquery(), ARRAY(BigInteger))
    posting = (
        select(KeywordPosting.term_id, KeywordPosting.term_frequency, KeywordPosting.chunk_length)
        .where(
            _in_collection(),
            KeywordPosting.chunk_id == candidates.c.chunk_id,
            KeywordPosting.term_id == func.any(term_ids),
        )
        # OFFSET keeps the subquery a subquery: pulled up into a join, it read the
        # query words' whole posting lists (24,000 rows at 20,000 chunks) to keep 900.
        .offset(0)
        .lateral("posting")
    )
    return (
        select(
            candidates.c.chunk_id.label("id"),
            func.sum(weight(posting.c.term_frequency, posting.c.chunk_length)).label("score"),
        )
        .select_from(candidates)
        .join(posting, true())
        .join(query_terms, query_terms.c.id == posting.c.term_id)
        .join(statistics, true())
        .group_by(candidates.c.chunk_id)
    )
