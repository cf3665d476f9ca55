"""Benchmark 4d: a vector search while chunks wait outside the HNSW graph.

Since migration 0014 a write into an indexed collection answers before its
chunks join the collection's graph (app/document/index_builds.py); until
they do, a search scans them exactly beside the graph's candidates
(app/search/repository.py). This loads benchmark 4's collection (blended
Cranfield abstracts, the fake upstream's dense vectors of their text), marks
the newest 0, 2,730 (one 1 MB upload, benchmark 1b) and 10,000
(`RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS`, the most that ever wait) of
them pending, and times the served statement against the graph's part of it
alone (0013's statement, the shape before 0014), alternating the two per
question; 100 Cranfield questions, an untimed pass first.

Marking chunks pending is an UPDATE, which leaves their old versions in the
graph as dead entries that the graph's part still walks past: that part
slows as more are marked, which a real pending write (never in the graph)
does not cause.

    python -m bench.pending_search [--size 100000] [--dimensions 1536]
        [--pending 0,2730,10000] [--questions 100]
"""

import argparse
import asyncio
import statistics
import time
from typing import Any

import numpy as np
from sqlalchemy import and_, bindparam, select, text
from sqlalchemy.sql.elements import BindParameter

from app.db.database import Database
from app.db.models import Chunk
from app.db.types import indexed_cosine_distance
from app.search.plan import RESULT_COLUMNS, AnySelect, scoped
from app.search.repository import _plain_vector_statement
from bench.common import database, report
from bench.ingest_one_file import COLLECTION, preload
from bench.search_scale import source_texts
from bench.upstream import UPSTREAM_EMBEDDINGS
from tests.support.fake_openai import dense_embed_texts

PENDING = "0,2730,10000"
SHORTLIST = 200  # RAGSTORE_VECTOR_RERANK_CANDIDATES' default


def graph_only_statement(dimensions: int) -> AnySelect:
    """0013's vector search (the graph's candidates re-ranked), over the chunks in it."""
    vector: BindParameter[Any] = bindparam("query_vector")
    distance = indexed_cosine_distance(Chunk.embedding, vector, dimensions)
    similarity = 1 - Chunk.embedding.cosine_distance(vector)
    nearest = (
        scoped(
            select(*RESULT_COLUMNS, distance.label("distance"), similarity.label("similarity")),
            bindparam("collection_id"),
            and_(Chunk.in_graph),
        )
        .order_by(distance)
        .limit(bindparam("shortlist"))
        .cte("nearest")
        .prefix_with("MATERIALIZED")
    )
    columns = (nearest.c[name] for name in ("id", "document_id", "filename", "text", "metadata"))
    return (
        select(*columns, nearest.c.similarity)
        .order_by(nearest.c.similarity.desc(), nearest.c.id)
        .limit(bindparam("k"))
    )


async def timed(database_: Database, questions: Any, dimensions: int) -> dict[str, list[float]]:
    statements = {
        "graph only (0013)": graph_only_statement(dimensions),
        "graph + pending (0014)": _plain_vector_statement(dimensions),
    }
    times: dict[str, list[float]] = {name: [] for name in statements}
    async with database_.session() as session:
        connection = await session.connection()
        for timed_pass in (False, True):
            for number, vector in enumerate(questions):
                parameters = {
                    "collection_id": COLLECTION,
                    "shortlist": SHORTLIST,
                    "k": 10,
                    "query_vector": vector,
                }
                order = list(statements.items())
                if number % 2:
                    order.reverse()
                for name, statement in order:
                    started = time.perf_counter()
                    (await connection.execute(statement, parameters)).all()
                    if timed_pass:
                        times[name].append((time.perf_counter() - started) * 1000)
    return times


async def run(size: int, dimensions: int, pending_sizes: list[int], questions: int) -> None:
    rows = []
    with database(**{**UPSTREAM_EMBEDDINGS, "embedding_dimensions": dimensions}) as (_, settings):
        await preload(settings, dimensions, size)
        _, asked = source_texts(1400, questions)
        vectors = dense_embed_texts(asked, dimensions).astype(np.float32)
        database_ = await Database.open(settings)
        try:
            marked = 0
            for pending in pending_sizes:
                async with database_.session() as session:
                    await session.execute(
                        text(
                            "UPDATE chunks SET in_graph = false WHERE id IN (SELECT id FROM chunks"
                            " WHERE in_graph ORDER BY id DESC LIMIT :more)"
                        ),
                        {"more": pending - marked},
                    )
                marked = pending
                for name, milliseconds in (await timed(database_, vectors, dimensions)).items():
                    rows.append(
                        [
                            f"{pending:,}",
                            name,
                            statistics.median(milliseconds),
                            float(np.percentile(milliseconds, 95)),
                        ]
                    )
        finally:
            await database_.close()
    report(
        "pending_search",
        f"Vector search SQL, k=10, {SHORTLIST} candidates, {questions} questions, "
        f"{size:,} chunks at {dimensions:,}-d (dense vectors), some pending outside the graph",
        ["chunks pending", "statement", "p50 ms", "p95 ms"],
        rows,
        {
            "size": size,
            "dimensions": dimensions,
            "pending": pending_sizes,
            "questions": questions,
            "shortlist": SHORTLIST,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="chunks in the collection")
    parser.add_argument("--dimensions", type=int, default=1536)
    parser.add_argument("--pending", default=PENDING, help="comma-separated, growing")
    parser.add_argument("--questions", type=int, default=100, help="Cranfield questions asked")
    arguments = parser.parse_args()
    pending_sizes = [int(size) for size in arguments.pending.split(",")]
    asyncio.run(run(arguments.size, arguments.dimensions, pending_sizes, arguments.questions))


if __name__ == "__main__":
    main()
