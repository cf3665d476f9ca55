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
        [--graphs 16:64,16:32,8:32] [--only bit,halfvec]
        [--vectors projected|word-sum]

`--graphs` builds each index with each (m, ef_construction); pgvector's
defaults, which the migrations use, are 16:64.
"""

import argparse
import asyncio
import functools
import time
from dataclasses import dataclass

import asyncpg
import numpy as np
import numpy.typing as npt
from asyncpg import BitString
from pgvector.asyncpg import register_vector

from app.core.config import Settings
from app.runtime import Runtime
from bench.common import database, percentile, report
from bench.search_scale import blend, source_texts
from tests.support.fake_openai import dense_embed_texts

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


def word_sum_vectors(
    rows: int, inserts: int, dimensions: int, texts_asked: int = 1400
) -> tuple[Vectors, Vectors]:
    """Stored rows and questions as the fake upstream embeds them (benchmark 4's vectors
    at 1,536-d): each text the normalised sum of fixed random vectors of its words."""
    texts, questions = source_texts(texts_asked, 100)
    base = dense_embed_texts(texts, dimensions)
    stored, _, _ = blend(base, texts, rows + inserts, np.random.default_rng(11))
    return stored, dense_embed_texts(questions, dimensions)


VECTORS = {"projected": "projected local-model vectors", "word-sum": "word-sum vectors"}


def exact_top(stored: Vectors, questions: Vectors) -> list[set[int]]:
    similarities = questions @ stored.T
    return [set(np.argsort(-row)[:K].tolist()) for row in similarities]


@dataclass(frozen=True)
class Index:
    """One way to index the rows: the index's definition, the expression its scan orders
    by ($1: the question's vector, $3: its sketch), and whether the shortlist is re-ranked
    by the full vectors."""

    definition: str
    order_by: str
    reranks: bool = True

    @property
    def sketched(self) -> bool:
        """Whether the rows carry a SimHash sketch (only the index that reads it pays)."""
        return "sketch" in self.definition


SKETCH_BITS = 6144  # SimHash: 4 random hyperplanes per dimension at 1,536-d

INDEXES = {
    "vector (full precision)": Index(
        "USING hnsw (embedding vector_cosine_ops)", "embedding <=> $1", reranks=False
    ),
    "bit (binary_quantize)": Index(
        "USING hnsw ((binary_quantize(embedding)::bit({d})) bit_hamming_ops)",
        "binary_quantize(embedding)::bit({d}) <~> binary_quantize($1::vector)",
    ),
    "halfvec (half precision)": Index(
        "USING hnsw ((embedding::halfvec({d})) halfvec_cosine_ops)",
        "embedding::halfvec({d}) <=> $1::halfvec({d})",
    ),
    "thermometer (3 bits per dimension)": Index(
        "USING hnsw ((thermometer_code(embedding)::bit({t})) bit_hamming_ops)",
        "thermometer_code(embedding)::bit({t}) <~> thermometer_code($1::vector)::bit({t})",
    ),
    f"simhash ({SKETCH_BITS:,} bits)": Index(
        "USING hnsw (sketch bit_hamming_ops)", "sketch <~> $3::bit(" + str(SKETCH_BITS) + ")"
    ),
}


# Each value coded by the thresholds at its distribution's quartiles (a unit vector's
# values have a standard deviation of about 1/sqrt(dimensions)): set bits count how many
# it exceeds, so Hamming distance is the L1 distance of the 4-level quantized vectors.
# Qualified names: PostgreSQL 17 evaluates index expressions with a search_path of
# pg_catalog alone.
THERMOMETER_FUNCTION = """
CREATE OR REPLACE FUNCTION public.thermometer_code(v public.vector) RETURNS bit
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
SELECT public.binary_quantize(v OPERATOR(public.+) public.vector_quartile(v))
    || public.binary_quantize(v)
    || public.binary_quantize(v OPERATOR(public.-) public.vector_quartile(v))
$$
"""
QUARTILE_FUNCTION = """
CREATE OR REPLACE FUNCTION public.vector_quartile(v public.vector) RETURNS public.vector
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
SELECT array_fill(0.6745 / sqrt(public.vector_dims(v)), ARRAY[public.vector_dims(v)])::public.vector
$$
"""


def search_sql(index: Index, dimensions: int) -> str:
    order_by = index.order_by.format(d=dimensions, t=3 * dimensions)
    if not index.reranks:
        return f"SELECT id FROM items ORDER BY {order_by} LIMIT $2"
    # The index's best `candidates`, re-ranked by their full vectors.
    return (
        "SELECT id FROM (SELECT id, embedding FROM items "
        f"ORDER BY {order_by} LIMIT $2) candidates ORDER BY embedding <=> $1::vector LIMIT 10"
    )


@functools.cache
def hyperplanes(dimensions: int) -> Vectors:
    """SimHash's fixed random hyperplanes, made once per run."""
    planes: Vectors = np.random.default_rng(7).standard_normal(
        (dimensions, SKETCH_BITS), np.float32
    )
    return planes


def sketches(vectors: Vectors) -> list[BitString]:
    """Each vector's SimHash: the signs of its products with fixed random hyperplanes."""
    bits = np.packbits((vectors @ hyperplanes(vectors.shape[1])) > 0, axis=1)
    return [BitString.frombytes(row.tobytes(), SKETCH_BITS) for row in bits]


async def copy_rows(
    connection: asyncpg.Connection, index: Index, first: int, vectors: Vectors
) -> None:
    if not index.sketched:
        records = [(first + n, vector) for n, vector in enumerate(vectors)]
        await connection.copy_records_to_table(
            "items", records=records, columns=["id", "embedding"]
        )
        return
    sketched = zip(vectors, sketches(vectors), strict=True)
    await connection.copy_records_to_table(
        "items",
        records=[(first + n, vector, sketch) for n, (vector, sketch) in enumerate(sketched)],
        columns=["id", "embedding", "sketch"],
    )


async def measure_index(
    connection: asyncpg.Connection,
    name: str,
    dimensions: int,
    stored: Vectors,
    inserts: Vectors,
    questions: Vectors,
    truths: list[set[int]],
    candidates: list[int],
    graph: tuple[int, int],
) -> list[list[object]]:
    index = INDEXES[name]
    await connection.execute("DROP TABLE IF EXISTS items")
    await connection.execute(
        f"CREATE TABLE items (id integer, embedding vector({dimensions}), "
        f"sketch bit({SKETCH_BITS}))"
    )
    await copy_rows(connection, index, 0, stored)
    await connection.execute("SET maintenance_work_mem = '2GB'")
    started = time.perf_counter()
    m, ef_construction = graph
    await connection.execute(
        f"CREATE INDEX ix_items ON items "
        f"{index.definition.format(d=dimensions, t=3 * dimensions)} "
        f"WITH (m = {m}, ef_construction = {ef_construction})"
    )
    build = time.perf_counter() - started
    await connection.execute("ANALYZE items")
    rows: list[list[object]] = []
    sql = search_sql(index, dimensions)
    asked = sketches(questions) if index.sketched else [None] * len(questions)
    for count in candidates if index.reranks else [K]:
        await connection.execute(f"SET hnsw.ef_search = {max(count, 100)}")
        recalls, seconds = [], []
        for question, sketch, truth in zip(questions, asked, truths, strict=True):
            started = time.perf_counter()
            arguments = (question, count, sketch) if index.sketched else (question, count)
            found = await connection.fetch(sql, *arguments)
            seconds.append(time.perf_counter() - started)
            recalls.append(len(truth & {row["id"] for row in found}) / K)
        rows.append(
            [
                name,
                f"{m}:{ef_construction}",
                count if index.reranks else "-",
                build,
                float(np.mean(recalls)),
                float(min(recalls)),
                percentile(seconds, 0.5) * 1000,
            ]
        )
    # With the simhash index, computing the inserted rows' sketches counts in the rate.
    started = time.perf_counter()
    await copy_rows(connection, index, len(stored), inserts)
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
    only: list[str],
    texts: int = 1400,
    kind: str = "projected",
) -> None:
    with database() as (_, settings):
        if kind == "word-sum":
            vectors, questions = word_sum_vectors(rows, inserts, dimensions, texts)
        else:
            vectors, questions = await model_vectors(settings, rows, inserts, dimensions, texts)
        stored, extra = vectors[:rows], vectors[rows:]
        truths = exact_top(stored, questions)
        assert settings.database_url
        connection = await asyncpg.connect(
            settings.database_url.replace("postgresql+asyncpg", "postgresql")
        )
        await register_vector(connection)
        await connection.execute(QUARTILE_FUNCTION)
        await connection.execute(THERMOMETER_FUNCTION)
        table: list[list[object]] = []
        for index in [index for index in INDEXES if index.startswith(tuple(only))]:
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
        f"HNSW on full vectors vs on quantized ones (exact re-rank), {rows:,} rows, "
        f"{dimensions:,}-d {VECTORS[kind]}, 100 Cranfield questions",
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
        {
            "rows": rows,
            "dimensions": dimensions,
            "vectors": VECTORS[kind],
            "inserts": inserts,
            "graphs": graphs,
            "sketch_bits": SKETCH_BITS,
        },
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
    parser.add_argument(
        "--only", default="", help="only the indexes whose name starts so, comma-separated"
    )
    parser.add_argument("--vectors", choices=sorted(VECTORS), default="projected")
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
            arguments.only.split(","),
            arguments.texts,
            arguments.vectors,
        )
    )


if __name__ == "__main__":
    main()
