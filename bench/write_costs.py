"""Benchmark 2b: what each index costs when a document's chunks are made current.

An upload ends with one statement in one transaction: its chunks copied from
the processed-document cache into `chunks` (INSERT ... SELECT), which
maintains every index of `chunks` and fires the BM25 trigger. This benchmark
ingests one large text through ragstore (the fake upstream's dense vectors,
at each dimension asked), then times that same statement again with parts
of the write path removed or replaced, each inside a transaction that
empties the table first and is rolled back after, so every variant writes
into empty indexes, as the first upload into a new database does:

- everything (the migrations' indexes: since 0011, from 1,024 dimensions the HNSW
  index is on binary-quantized vectors);
- without the HNSW index; also without the BM25 trigger; also without the
  GIN indexes;
- with the HNSW index on the full-precision vectors (up to 2,000 dimensions) instead;
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

from sqlalchemy import text

from app.db.database import Database
from app.db.models import Document
from app.document.partitions import ChunkPartitionRepository
from app.document.repository import CachedChunks, ChunkRepository
from app.ingestion.prepared import ProcessingOptions
from app.ingestion.upload import describe_file
from app.runtime import Runtime
from bench.common import database, dimension_list, median, report
from bench.ingest_one_file import large_text
from bench.upstream import UPSTREAM_EMBEDDINGS
from tests.support.fake_openai import FakeOpenAI

COLLECTION = "bench"
NO_BM25 = "ALTER TABLE chunks DISABLE TRIGGER keyword_index_add"
FULL_PRECISION = "embedding vector_cosine_ops"
NO_GIN = ("DROP INDEX ix_chunks_text_search", "DROP INDEX ix_chunks_metadata")
# A collection's first upload: the chunks written with no graph to keep up, then the
# index built over them, in the same transaction (app/document/partitions.py).
FIRST_FILL = "first fill: written without HNSW, then the index built"


def variants(dimensions: int, partition: str) -> dict[str, list[str]]:
    """The setups, for the collection's partition of chunks (migration 0012)."""
    no_hnsw = f"DROP INDEX {partition}_embedding_hnsw"

    def instead(name: str, indexed: str) -> list[str]:
        return [no_hnsw, f"CREATE INDEX {name} ON {partition} USING hnsw ({indexed})"]

    full = (
        {"HNSW on full-precision vectors instead": instead("ix_bench_full", FULL_PRECISION)}
        # pgvector's HNSW index takes at most 2,000 dimensions of `vector`.
        if dimensions <= 2000
        else {}
    )
    return {
        "everything (the migrations' indexes)": [],
        FIRST_FILL: [no_hnsw],
        "without the HNSW index": [no_hnsw],
        "without HNSW and the BM25 trigger": [no_hnsw, NO_BM25],
        "without HNSW, BM25 and the GIN indexes": [no_hnsw, NO_BM25, *NO_GIN],
        **full,
        "HNSW on binary_quantize (bit) instead": instead(
            "ix_bench_bit", f"(binary_quantize(embedding)::bit({dimensions})) bit_hamming_ops"
        ),
        "HNSW on halfvec instead": instead(
            "ix_bench_half", f"(embedding::halfvec({dimensions})) halfvec_cosine_ops"
        ),
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
                document = result.document
                rows: list[list[object]] = []
                async with runtime.database.session() as session:
                    partition = await ChunkPartitionRepository(session).name(COLLECTION)
                for name, setup in variants(dimensions, partition).items():
                    seconds = await time_variant(
                        runtime.database, setup, document, repeat, build=name == FIRST_FILL
                    )
                    rows.append(
                        [
                            f"{dimensions:,}",
                            name,
                            document.chunk_count,
                            seconds,
                            document.chunk_count / seconds,
                        ]
                    )
                return rows
            finally:
                await runtime.close()
    finally:
        upstream.stop()


async def time_variant(
    database: Database, setup: list[str], document: Document, repeat: int, build: bool
) -> float:
    """Seconds of the repository's copy from the cache (median of `repeat`), each time in a
    transaction that is rolled back."""
    seconds = []
    for _ in range(repeat):
        async with database.sessionmaker() as session:
            # Emptied (and rolled back after), so every index starts empty as in a new
            # collection's first upload. A DELETE would leave the vectors in the HNSW
            # graph, and pgvector adds a duplicate of a vector in the graph at almost no cost.
            await session.execute(text("TRUNCATE chunks"))
            for statement in setup:
                await session.execute(text(statement))
            assert document.cache_key is not None
            started = time.perf_counter()
            await ChunkRepository(session).copy_from_cache(
                CachedChunks(document.cache_key, document.id, COLLECTION, {}), in_graph=True
            )
            if build:
                await ChunkPartitionRepository(session).build_vector_index(COLLECTION)
            seconds.append(time.perf_counter() - started)
            await session.rollback()
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
    parser.add_argument("--dimensions", type=dimension_list, default=[1536, 384])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each variant")
    arguments = parser.parse_args()
    sizes = arguments.dimensions
    asyncio.run(run(arguments.megabytes, sizes, arguments.repeat))


if __name__ == "__main__":
    main()
