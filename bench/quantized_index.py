"""Benchmark 4c: an HNSW index on binary-quantized vectors, with an exact re-rank, at 1,536-d.

Keeping an HNSW index up to date is most of what a write costs at 1,536
dimensions (benchmark 2b). pgvector can index `binary_quantize(embedding)`
instead (one bit per dimension, Hamming distance), which is cheaper to build
and to keep, and a search then re-ranks the index's best candidates by their
full vectors. This benchmark measures what that costs in recall.

Vectors are dense and shaped like a model's: the local model
(all-MiniLM-L6-v2) embeds Cranfield's abstracts and questions, a fixed random
Gaussian matrix projects them to `--dimensions`, and each stored row is a
blend of two abstracts plus noise (as in benchmark 4). Rows go to a plain
table by binary COPY; each index is built after the load. Per index:

- its build time, and the rate of keeping it up to date (a COPY of
  `--inserts` more rows into the indexed table);
- for each candidate count: recall@10 of the 100 questions against an exact
  scan (numpy, full vectors), and the SQL p50.

    python -m bench.quantized_index [--rows 100000] [--dimensions 1536]
        [--candidates 40,100,200,400] [--inserts 5000] [--name quantized_index]
        [--graphs 16:64,16:32,8:32] [--only bit]

`--graphs` builds each index with each (m, ef_construction); pgvector's
defaults, which the migrations use, are 16:64.
"""

import argparse
import asyncio
import time

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from app.core.config import Settings
from app.runtime import Runtime
from bench.common import database, percentile, report
from bench.search_scale import blend, source_texts

Vectors = npt.NDArray[np.float32]
K = 10


async def model_vectors(
    settings: Settings, rows: int, inserts: int, dimensions: int, texts_asked: int = 1400
) -> tuple[Vectors, Vectors]:
    """Stored rows (rows + inserts) and questions, projected to `dimensions`."""
    texts, questions = source_texts(texts_asked, 100)
    runtime = await Runtime.open(settings)
    try:
        base = np.asarray(await runtime.embedding_model.aget_embeddings(texts), np.float32)
        asked = np.asarray(await runtime.embedding_model.aget_embeddings(questions), np.float32)
    finally:
        await runtime.close()
    rng = np.random.default_rng(11)
    projection = rng.standard_normal((base.shape[1], dimensions)).astype(np.float32)
    stored, _, _ = blend(base, texts, rows + inserts, rng)

    def project(vectors: Vectors) -> Vectors:
        projected = vectors @ projection
        unit: Vectors = projected / np.linalg.norm(projected, axis=1, keepdims=True)
        return unit

    return project(stored), project(asked)


def exact_top(stored: Vectors, questions: Vectors) -> list[set[int]]:
    similarities = questions @ stored.T
    return [set(np.argsort(-row)[:K].tolist()) for row in similarities]


INDEXES = {
    "vector (full precision)": "USING hnsw (embedding vector_cosine_ops)",
    "bit (binary_quantize)": "USING hnsw ((binary_quantize(embedding)::bit({d})) bit_hamming_ops)",
}


def search_sql(index: str, dimensions: int) -> str:
    if index.startswith("vector"):
        return "SELECT id FROM items ORDER BY embedding <=> $1 LIMIT $2"
    # The index's best `candidates` by Hamming distance, re-ranked by their full vectors.
    return (
        "SELECT id FROM (SELECT id, embedding FROM items "
        f"ORDER BY binary_quantize(embedding)::bit({dimensions}) <~> binary_quantize($1::vector) "
        "LIMIT $2) candidates ORDER BY embedding <=> $1::vector LIMIT 10"
    )


async def measure_index(
    connection: asyncpg.Connection,
    index: str,
    dimensions: int,
    stored: Vectors,
    inserts: Vectors,
    questions: Vectors,
    truths: list[set[int]],
    candidates: list[int],
    graph: tuple[int, int],
) -> list[list[object]]:
    await connection.execute("DROP TABLE IF EXISTS items")
    await connection.execute(f"CREATE TABLE items (id integer, embedding vector({dimensions}))")
    await connection.copy_records_to_table(
        "items", records=list(enumerate(stored)), columns=["id", "embedding"]
    )
    await connection.execute("SET maintenance_work_mem = '2GB'")
    started = time.perf_counter()
    m, ef_construction = graph
    await connection.execute(
        f"CREATE INDEX ix_items ON items {INDEXES[index].format(d=dimensions)} "
        f"WITH (m = {m}, ef_construction = {ef_construction})"
    )
    build = time.perf_counter() - started
    await connection.execute("ANALYZE items")
    rows: list[list[object]] = []
    for count in candidates if index.startswith("bit") else [K]:
        await connection.execute(f"SET hnsw.ef_search = {max(count, 100)}")
        sql = search_sql(index, dimensions)
        recalls, seconds = [], []
        for question, truth in zip(questions, truths, strict=True):
            started = time.perf_counter()
            found = await connection.fetch(sql, question, count)
            seconds.append(time.perf_counter() - started)
            recalls.append(len(truth & {row["id"] for row in found}) / K)
        rows.append(
            [
                index,
                f"{m}:{ef_construction}",
                count if index.startswith("bit") else "-",
                build,
                float(np.mean(recalls)),
                float(min(recalls)),
                percentile(seconds, 0.5) * 1000,
            ]
        )
    started = time.perf_counter()
    first = len(stored)
    await connection.copy_records_to_table(
        "items",
        records=[(first + n, vector) for n, vector in enumerate(inserts)],
        columns=["id", "embedding"],
    )
    rate = len(inserts) / (time.perf_counter() - started)
    for row in rows:
        row.append(rate)
    return rows


async def run(
    rows: int,
    dimensions: int,
    candidates: list[int],
    inserts: int,
    name: str,
    graphs: list[tuple[int, int]],
    only: str,
    texts: int = 1400,
) -> None:
    with database() as (_, settings):
        vectors, questions = await model_vectors(settings, rows, inserts, dimensions, texts)
        stored, extra = vectors[:rows], vectors[rows:]
        truths = exact_top(stored, questions)
        assert settings.database_url
        connection = await asyncpg.connect(
            settings.database_url.replace("postgresql+asyncpg", "postgresql")
        )
        await register_vector(connection)
        table: list[list[object]] = []
        for index in [index for index in INDEXES if index.startswith(only)]:
            for graph in graphs:
                table += await measure_index(
                    connection,
                    index,
                    dimensions,
                    stored,
                    extra,
                    questions,
                    truths,
                    candidates,
                    graph,
                )
        await connection.close()
    report(
        name,
        f"HNSW on full vectors vs on binary-quantized ones (exact re-rank), {rows:,} rows, "
        f"{dimensions:,}-d projected local-model vectors, 100 Cranfield questions",
        [
            "index",
            "m:ef_construction",
            "candidates re-ranked",
            "build (s)",
            "recall@10",
            "worst question",
            "SQL p50 (ms)",
            "kept up to date (rows/s)",
        ],
        table,
        {"rows": rows, "dimensions": dimensions, "inserts": inserts, "graphs": graphs},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dimensions", type=int, default=1536)
    parser.add_argument("--candidates", default="40,100,200,400", help="re-ranked, comma-separated")
    parser.add_argument("--inserts", type=int, default=5000, help="rows written after the build")
    parser.add_argument("--name", default="quantized_index", help="results file name")
    parser.add_argument("--graphs", default="16:64", help="m:ef_construction, comma-separated")
    parser.add_argument(
        "--texts", type=int, default=1400, help="abstracts the local model embeds (at most 1,398)"
    )
    parser.add_argument("--only", default="", help="only the indexes whose name starts so")
    arguments = parser.parse_args()
    counts = [int(count) for count in arguments.candidates.split(",")]
    graphs = [
        (int(m), int(ef)) for m, ef in (pair.split(":") for pair in arguments.graphs.split(","))
    ]
    asyncio.run(
        run(
            arguments.rows,
            arguments.dimensions,
            counts,
            arguments.inserts,
            arguments.name,
            graphs,
            arguments.only,
            arguments.texts,
        )
    )


if __name__ == "__main__":
    main()
