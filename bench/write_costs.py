"""Benchmark 2b: what each index costs when a document's chunks are made current.

An upload ends with one statement in one transaction: its chunks copied from
the processed-document cache into `chunks` (INSERT ... SELECT), which
maintains every index of `chunks` and fires the BM25 trigger. This benchmark
ingests one large text through ragstore (the fake upstream's dense vectors,
at each dimension asked), then times that same statement again with parts
of the write path removed or replaced, each inside a transaction that
empties the table first and is rolled back after, so every variant writes
into empty indexes, as the first upload into a new database does:

- everything (today's write);
- without the HNSW index; also without the BM25 trigger; also without the
  GIN indexes;
- with the HNSW index on a binary quantization of the vectors
  (`binary_quantize(embedding)::bit(n)`, Hamming distance) instead;
- with the HNSW index on a half-precision copy (`embedding::halfvec(n)`)
  instead.

    python -m bench.write_costs [--megabytes 1] [--dimensions 1536,384] [--repeat 2]
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import asyncpg

from app.ingestion.prepared import ProcessingOptions
from app.ingestion.upload import describe_file
from app.runtime import Runtime
from bench.common import database, median, report
from bench.ingest_one_file import large_text
from bench.upstream import UPSTREAM_EMBEDDINGS
from tests.support.fake_openai import FakeOpenAI

COLLECTION = "bench"
MAKE_CURRENT = """
INSERT INTO chunks (document_id, collection_id, chunk_index, text, metadata, embedding)
SELECT $1, $2, chunk_index, text, metadata, embedding FROM processed_chunks
ORDER BY chunk_index
"""
NO_HNSW = "DROP INDEX ix_chunks_embedding_hnsw"
NO_BM25 = "ALTER TABLE chunks DISABLE TRIGGER keyword_index_add"
NO_GIN = ("DROP INDEX ix_chunks_text_search", "DROP INDEX ix_chunks_metadata")


def variants(dimensions: int) -> dict[str, list[str]]:
    return {
        "everything (today)": [],
        "without the HNSW index": [NO_HNSW],
        "without HNSW and the BM25 trigger": [NO_HNSW, NO_BM25],
        "without HNSW, BM25 and the GIN indexes": [NO_HNSW, NO_BM25, *NO_GIN],
        "HNSW on binary_quantize (bit) instead": [
            NO_HNSW,
            "CREATE INDEX ix_bench_bit ON chunks USING hnsw "
            f"((binary_quantize(embedding)::bit({dimensions})) bit_hamming_ops)",
        ],
        "HNSW on halfvec instead": [
            NO_HNSW,
            "CREATE INDEX ix_bench_half ON chunks USING hnsw "
            f"((embedding::halfvec({dimensions})) halfvec_cosine_ops)",
        ],
    }


async def measure(dimensions: int, megabytes: float, repeat: int) -> list[list[object]]:
    upstream = FakeOpenAI(dense_vectors=True, embedding_dimensions=dimensions).start()
    overrides = {
        **UPSTREAM_EMBEDDINGS,
        "embedding_dimensions": dimensions,
        "openai_base_url": upstream.url,
        "openai_api_key": "bench",
    }
    try:
        with database(**overrides) as (_, settings), tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "abstracts.txt"
            path.write_text(large_text(megabytes))
            runtime = await Runtime.open(settings)
            try:
                stored = await asyncio.to_thread(describe_file, path)
                options = ProcessingOptions(chunk_size=500, chunk_overlap=50)
                result = await runtime.ingestion.ingest(
                    stored, COLLECTION, options, create_collection=True
                )
            finally:
                await runtime.close()
            assert settings.database_url
            connection = await asyncpg.connect(
                settings.database_url.replace("postgresql+asyncpg", "postgresql")
            )
            try:
                chunks = result.document.chunk_count
                rows: list[list[object]] = []
                for name, setup in variants(dimensions).items():
                    seconds = await time_variant(connection, setup, result.document.id, repeat)
                    rows.append([f"{dimensions:,}", name, chunks, seconds, chunks / seconds])
                return rows
            finally:
                await connection.close()
    finally:
        upstream.stop()


async def time_variant(
    connection: asyncpg.Connection, setup: list[str], document_id: object, repeat: int
) -> list[float]:
    """Seconds of the statement (median of `repeat`), each time over the same table."""
    seconds = []
    for _ in range(repeat):
        transaction = connection.transaction()
        await transaction.start()
        # Emptied (and rolled back after), so every index starts empty as in a new
        # collection's first upload. A DELETE would leave the vectors in the HNSW graph,
        # and pgvector adds a duplicate of a vector in the graph at almost no cost.
        await connection.execute("TRUNCATE chunks")
        for statement in setup:
            await connection.execute(statement)
        started = time.perf_counter()
        await connection.execute(MAKE_CURRENT, document_id, COLLECTION)
        seconds.append(time.perf_counter() - started)
        await transaction.rollback()
    return median(seconds)


async def run(megabytes: float, dimensions: list[int], repeat: int) -> None:
    rows = [row for size in dimensions for row in await measure(size, megabytes, repeat)]
    report(
        "write_costs",
        f"Making a {megabytes:g} MB text's chunks current (INSERT ... SELECT from the cache), "
        "with parts of the write path removed or replaced",
        ["dimensions", "write", "chunks", "seconds", "chunks/s"],
        rows,
        {"megabytes": megabytes, "repeat": repeat, "vectors": "dense, sums of word vectors"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=float, default=1.0, help="size of the text file")
    parser.add_argument("--dimensions", default="1536,384", help="comma-separated")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each variant")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.dimensions.split(",")]
    asyncio.run(run(arguments.megabytes, sizes, arguments.repeat))


if __name__ == "__main__":
    main()
