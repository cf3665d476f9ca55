"""Benchmark 4b: what exact BM25 must read, and what shortlists built from rare words find.

Issue 16 asks for keyword search in 10 ms at 100,000 chunks with a top-10
overlap of at least 0.95 against exhaustive BM25. This benchmark measures,
question by question, the designs that would get there, on benchmark 4's
chunks (Cranfield abstracts blended with a partner's first words) and
Cranfield's questions:

- **Exhaustive**: every posting of the question's words (what
  `RAGSTORE_BM25_EXACT` reads), and its SQL time.
- **MaxScore** (Turtle and Flood), given the exact 10th-best score θ for
  free, which no real search has: the words are sorted by their highest
  weight, and the longest prefix whose highest weights sum below θ cannot
  put a chunk in the top 10 on its own. Only the other words' postings
  ("essential") must be read; the candidates are the chunks in them whose
  known part plus the prefix's bound still reaches θ, and each must then be
  looked up for the prefix's words. The table reports both counts and the
  SQL time of reading the essential postings alone.
- **Rare words first, then a shortlist**: the rarest words' postings up to a
  budget are scored, the best `shortlist` chunks by that part are scored
  exactly, and the tie-aware top-10 overlap with exhaustive BM25 is
  reported (a found chunk counts when its exact score reaches the exact
  10th best: chunks of one abstract share its text, so equal scores are
  common).

Weights are computed here with numpy from the postings' frequencies and
lengths (k1 1.2, b 0.75, the collection's current average length), as
app/search/bm25.py computes them in SQL.

    python -m bench.bm25_pruning [--size 100000] [--queries 100]
"""

import argparse
import asyncio
import time
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from app.runtime import Runtime
from bench.common import console, database, percentile, report
from bench.search_scale import COLLECTION, DOCUMENTS, blend, chunk_rows, grow, source_texts
from bench.seed import seed_documents

K1, B = 1.2, 0.75
BUDGETS = (0.1, 0.2, 0.4)  # postings read from the rarest words, per chunk of the collection
SHORTLISTS = (100, 300, 1000)

Floats = npt.NDArray[np.float64]


class Question:
    """One question's postings with their exact BM25 weights."""

    def __init__(
        self,
        terms: list[asyncpg.Record],
        postings: list[asyncpg.Record],
        chunks: int,
        average_length: float,
    ) -> None:
        frequency = {t["id"]: t["document_frequency"] for t in terms}
        idf = {t: np.log(1 + (chunks - df + 0.5) / (df + 0.5)) for t, df in frequency.items()}
        self.frequency = frequency
        self.term = np.array([p["term_id"] for p in postings], np.int64)
        tf = np.array([p["term_frequency"] for p in postings], np.float64)
        length = np.array([p["chunk_length"] for p in postings], np.float64)
        self.weight: Floats = (
            np.array([idf[t] for t in self.term])
            * tf
            * (K1 + 1)
            / (tf + K1 * (1 - B + B * length / average_length))
        )
        self.chunks, self.chunk_of = np.unique(
            np.array([p["chunk_id"] for p in postings], np.int64), return_inverse=True
        )
        self.score: Floats = self.partial(np.ones(len(postings), bool))
        self.theta = float(np.sort(self.score)[-10]) if len(self.score) >= 10 else 0.0
        self.highest = {t: float(self.weight[self.term == t].max()) for t in frequency}

    def partial(self, read: npt.NDArray[np.bool_]) -> Floats:
        return np.bincount(self.chunk_of, self.weight * read, minlength=len(self.chunks))

    def holds(self, read: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        return np.bincount(self.chunk_of, read.astype(float), minlength=len(self.chunks)) > 0

    def maxscore(self) -> tuple[list[int], int, int]:
        """The essential words with θ known, their postings, and the candidates to look up."""
        prefix: list[int] = []
        bound = 0.0
        for term in sorted(self.highest, key=self.highest.__getitem__):
            if bound + self.highest[term] >= self.theta:
                break
            prefix.append(term)
            bound += self.highest[term]
        essential = ~np.isin(self.term, prefix)
        candidates = self.holds(essential) & (self.partial(essential) + bound >= self.theta)
        return (
            [t for t in self.highest if t not in prefix],
            int(essential.sum()),
            int(candidates.sum()),
        )

    def shortlist_overlap(self, budget: int, shortlist: int) -> float:
        """Top-10 overlap of: rarest words up to `budget` postings, best `shortlist` exact."""
        read: list[int] = []
        total = 0
        for term in sorted(self.frequency, key=self.frequency.__getitem__):
            if read and total + self.frequency[term] > budget:
                break
            read.append(term)
            total += self.frequency[term]
        rare = np.isin(self.term, read)
        known = self.partial(rare)
        listed = np.flatnonzero(self.holds(rare))
        best = listed[np.argsort(-known[listed], kind="stable")[:shortlist]]
        found = best[np.argsort(-self.score[best], kind="stable")[:10]]
        return float(np.mean(self.score[found] >= self.theta - 1e-9))


SCORE_SQL = """
SELECT p.chunk_id, sum(t.idf * p.term_frequency * 2.2 / (p.term_frequency
       + 1.2 * (0.25 + 0.75 * p.chunk_length / $2::float8))) AS score
FROM (SELECT id, ln(1 + ($3::float8 - document_frequency + 0.5)
                        / (document_frequency + 0.5)) AS idf
      FROM keyword_terms WHERE id = ANY($1::bigint[])) t
JOIN keyword_postings p ON p.term_id = t.id
GROUP BY p.chunk_id ORDER BY score DESC LIMIT 10
"""


async def sql_ms(
    connection: asyncpg.Connection, terms: list[int], average: float, chunks: int
) -> float:
    """The SQL time of scoring every posting of these words (best of two runs)."""
    times = []
    for _ in range(2):
        started = time.perf_counter()
        await connection.fetch(SCORE_SQL, terms, average, chunks)
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


async def load(settings: Any, size: int, question_limit: int) -> list[str]:
    texts, questions = source_texts(1400, question_limit)
    rng = np.random.default_rng(7)
    # Vectors play no part in keyword search: random ones keep the load quick.
    base = rng.normal(size=(len(texts), 8)).astype(np.float32)
    runtime = await Runtime.open(settings)
    try:
        documents = await seed_documents(
            runtime.database, COLLECTION, [f"part-{n}.txt" for n in range(DOCUMENTS)]
        )
        vectors, sources, blended = blend(base, texts, size, rng)
        padded = np.zeros((size, runtime.embedding_model.dimensions), np.float32)
        padded[:, :8] = vectors
        connection = await connect(settings)
        try:
            await grow(
                runtime.database,
                connection,
                chunk_rows(documents, 0, padded, sources, blended),
                vector_index=False,
            )
        finally:
            await connection.close()
    finally:
        await runtime.close()
    return questions


async def connect(settings: Any) -> asyncpg.Connection:
    connection = await asyncpg.connect(
        settings.database_url.replace("postgresql+asyncpg", "postgresql")
    )
    await register_vector(connection)
    return connection


async def run(size: int, question_limit: int) -> None:
    with database() as (_, settings):
        questions = await load(settings, size, question_limit)
        connection = await connect(settings)
        chunks, total = await connection.fetchrow(
            "SELECT chunk_count, total_length FROM keyword_collections WHERE collection_id = $1",
            COLLECTION,
        )
        average = total / max(chunks, 1)
        measured: dict[str, list[float]] = {}

        def note(key: str, value: float) -> None:
            measured.setdefault(key, []).append(value)

        for text in questions:
            terms = await connection.fetch(
                "SELECT id, document_frequency FROM keyword_terms WHERE collection_id = $1"
                " AND term = ANY(tsvector_to_array(to_tsvector('english', $2)))",
                COLLECTION,
                text,
            )
            if not terms:
                continue
            postings = await connection.fetch(
                "SELECT chunk_id, term_id, term_frequency, chunk_length FROM keyword_postings"
                " WHERE term_id = ANY($1::bigint[])",
                [t["id"] for t in terms],
            )
            question = Question(terms, postings, chunks, average)
            note("exhaustive postings", len(postings))
            note("exhaustive ms", await sql_ms(connection, list(question.highest), average, chunks))
            essential, read, candidates = question.maxscore()
            note("maxscore postings", read)
            note("maxscore candidates", candidates)
            note("maxscore essential ms", await sql_ms(connection, essential, average, chunks))
            for share in BUDGETS:
                for shortlist in SHORTLISTS:
                    overlap = question.shortlist_overlap(int(share * chunks), shortlist)
                    note(f"rare words {int(share * chunks):,} + shortlist {shortlist}", overlap)
        await connection.close()
    rows = [
        [
            key,
            len(values),
            float(np.mean(values)),
            float(np.median(values)),
            percentile(values, 0.9),
        ]
        for key, values in measured.items()
    ]
    report(
        "bm25_pruning",
        f"What exact BM25 reads at {size:,} chunks, per question (overlap rows: top-10 overlap)",
        ["measure", "questions", "mean", "p50", "p90"],
        rows,
        {"size": size, "questions": question_limit, "k1": K1, "b": B},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000, help="chunks in the collection")
    parser.add_argument("--queries", type=int, default=100, help="Cranfield questions asked")
    arguments = parser.parse_args()
    console.print(f"bm25_pruning: {arguments.size:,} chunks, {arguments.queries} questions")
    asyncio.run(run(arguments.size, arguments.queries))


if __name__ == "__main__":
    main()
