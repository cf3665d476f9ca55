"""Benchmark 1: ingest N chunks the original app's way and ragstore's way.

The original sent sequential embedding calls of 5 chunks each and kept the
vectors in a dict. ragstore batches by count and tokens, keeps several
batches in flight, and stores everything in PostgreSQL (COPY, indexes, cache).
Both embed through the same OpenAI-compatible server with the same latency,
which answers with dense vectors (sums of fixed random word vectors). The
original asks for OpenAI's default 1,536 dimensions, as it did; ragstore runs
at each dimension asked, into a new database each time.

    python -m bench.ingest_vs_original [--chunks 10000] [--latency 0.1]
        [--dimensions 1536,384]
"""

import argparse
import asyncio
import math
import tempfile
from pathlib import Path

import openai

from app.ingestion.prepared import ProcessingOptions
from app.ingestion.upload import describe_file
from app.runtime import Runtime
from bench.common import database, dimension_list, report, timer
from bench.corpus import paragraphs, ragstore_chunks
from bench.upstream import UPSTREAM_EMBEDDINGS, embedding_calls, fake_upstream

# What text-embedding-3-small returns when a call names no dimensions, as the original's.
ORIGINAL_DIMENSIONS = 1536


async def original_approach(url: str, texts: list[str]) -> int:
    """Sequential calls of 5 inputs, vectors kept in memory keyed by text (as the original)."""
    client = openai.AsyncOpenAI(api_key="bench", base_url=url, max_retries=0)
    vectors: dict[str, list[float]] = {}
    calls = 0
    for start in range(0, len(texts), 5):
        batch = texts[start : start + 5]
        response = await client.embeddings.create(
            model="text-embedding-3-small", input=batch, dimensions=ORIGINAL_DIMENSIONS
        )
        vectors.update(zip(batch, (item.embedding for item in response.data), strict=True))
        calls += 1
    await client.close()
    return calls


async def ragstore_approach(runtime: Runtime, path: Path) -> int:
    stored = await asyncio.to_thread(describe_file, path)
    options = ProcessingOptions(chunk_size=500, chunk_overlap=50)
    result = await runtime.ingestion.ingest(stored, "bench", options, create_collection=True)
    return result.document.chunk_count


async def run(chunks: int, latency: float, dimensions: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reports.txt"
        path.write_text("\n\n".join(paragraphs(chunks)))
        texts = ragstore_chunks(path)
        with fake_upstream(latency, dense=True) as upstream:
            with timer() as original_seconds:
                original_calls = await original_approach(upstream.url, texts)
            rows: list[list[object]] = [
                [
                    "original (5 per call, sequential, in memory)",
                    f"{ORIGINAL_DIMENSIONS:,}",
                    len(texts),
                    original_calls,
                    original_seconds[0],
                    len(texts) / original_seconds[0],
                    1.0,
                ]
            ]
            for size in dimensions:
                rows += await ragstore_rows(path, upstream.url, size, latency, original_seconds[0])
    speedups = ", ".join(f"{row[6]:,.1f}x at {row[1]}-d" for row in rows[1::2])
    report(
        "ingest_vs_original",
        f"Ingest {len(texts):,} chunks, {latency * 1000:.0f} ms per embedding call, dense "
        f"vectors: ragstore {speedups} faster than the original",
        ["approach", "dimensions", "chunks", "embedding calls", "seconds", "chunks/s", "speed-up"],
        rows,
        {
            "chunks": chunks,
            "latency_seconds": latency,
            "original_calls": original_calls,
            "vectors": "dense, sums of word vectors",
        },
    )


async def ragstore_rows(
    path: Path, url: str, dimensions: int, latency: float, original_seconds: float
) -> list[list[object]]:
    """ragstore's ingest into a new database, and the floor of its embedding calls."""
    overrides = {
        **UPSTREAM_EMBEDDINGS,
        "embedding_dimensions": dimensions,
        "openai_base_url": url,
        "openai_api_key": "bench",
    }
    with database(**overrides) as (_, settings):
        runtime = await Runtime.open(settings)
        before = embedding_calls(url)
        with timer() as seconds:
            stored = await ragstore_approach(runtime, path)
            # Up to 10,000 first chunks answer before their HNSW index is built
            # (app/document/index_builds.py); the time here includes the build.
            await runtime.index_builds.wait()
        calls = embedding_calls(url) - before
        await runtime.close()
    lower_bound = math.ceil(calls / settings.embedding_concurrency) * latency
    label = f"{dimensions:,}"
    return [
        [
            "ragstore (batched, concurrent, into PostgreSQL)",
            label,
            stored,
            calls,
            seconds[0],
            stored / seconds[0],
            original_seconds / seconds[0],
        ],
        [
            "calls alone at ragstore's concurrency (lower bound)",
            label,
            stored,
            calls,
            lower_bound,
            stored / lower_bound if lower_bound else float("inf"),
            original_seconds / lower_bound if lower_bound else float("inf"),
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--dimensions", type=dimension_list, default=[1536, 384])
    arguments = parser.parse_args()
    sizes = arguments.dimensions
    asyncio.run(run(arguments.chunks, arguments.latency, sizes))


if __name__ == "__main__":
    main()
