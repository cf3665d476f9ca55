"""Benchmark 1: ingest N chunks the original app's way and ragstore's way.

The original sent sequential embedding calls of 5 chunks each and kept the
vectors in a dict. ragstore batches by count and tokens, keeps several
batches in flight, and stores everything in PostgreSQL (COPY, indexes, cache).
Both embed through the same OpenAI-compatible server with the same latency.

    python -m bench.ingest_vs_original [--chunks 10000] [--latency 0.1]
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
from bench.common import database, report, timer
from bench.corpus import paragraphs, ragstore_chunks
from bench.upstream import embedding_calls, fake_upstream


async def original_approach(url: str, texts: list[str]) -> int:
    """Sequential calls of 5 inputs, vectors kept in memory keyed by text (as the original)."""
    client = openai.AsyncOpenAI(api_key="bench", base_url=url, max_retries=0)
    vectors: dict[str, list[float]] = {}
    calls = 0
    for start in range(0, len(texts), 5):
        batch = texts[start : start + 5]
        response = await client.embeddings.create(model="text-embedding-3-small", input=batch)
        vectors.update(zip(batch, (item.embedding for item in response.data), strict=True))
        calls += 1
    await client.close()
    return calls


async def ragstore_approach(runtime: Runtime, path: Path) -> int:
    stored = await asyncio.to_thread(describe_file, path)
    options = ProcessingOptions(chunk_size=500, chunk_overlap=50)
    result = await runtime.ingestion.ingest(stored, "bench", options, create_collection=True)
    return result.document.chunk_count


async def run(chunks: int, latency: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reports.txt"
        path.write_text("\n\n".join(paragraphs(chunks)))
        texts = ragstore_chunks(path)
        with fake_upstream(latency) as upstream:
            with timer() as original_seconds:
                original_calls = await original_approach(upstream.url, texts)
            settings_overrides = {
                "embedding_provider": "openai",
                "embedding_model": "text-embedding-3-small",
                "embedding_dimensions": 384,
                "openai_base_url": upstream.url,
                "openai_api_key": "bench",
            }
            with database(**settings_overrides) as (_, settings):
                runtime = await Runtime.open(settings)
                before = embedding_calls(upstream.url)
                with timer() as ragstore_seconds:
                    stored = await ragstore_approach(runtime, path)
                ragstore_calls = embedding_calls(upstream.url) - before
                await runtime.close()
    concurrency = settings.embedding_concurrency
    lower_bound = math.ceil(ragstore_calls / concurrency) * latency
    rows = [
        [
            "original (5 per call, sequential, in memory)",
            len(texts),
            original_calls,
            original_seconds[0],
            chunks / original_seconds[0],
        ],
        [
            "ragstore (batched, concurrent, into PostgreSQL)",
            stored,
            ragstore_calls,
            ragstore_seconds[0],
            stored / ragstore_seconds[0],
        ],
        [
            "calls alone at ragstore's concurrency (lower bound)",
            stored,
            ragstore_calls,
            lower_bound,
            stored / lower_bound if lower_bound else float("inf"),
        ],
    ]
    speedup = original_seconds[0] / ragstore_seconds[0]
    fewer_calls = 1 - ragstore_calls / original_calls
    report(
        "ingest_vs_original",
        f"Ingest {stored:,} chunks, {latency * 1000:.0f} ms per embedding call: "
        f"ragstore {speedup:,.0f}x faster, {fewer_calls:.1%} fewer calls",
        ["approach", "chunks", "embedding calls", "seconds", "chunks/s"],
        rows,
        {
            "chunks": chunks,
            "latency_seconds": latency,
            "embedding_concurrency": concurrency,
            "speedup": speedup,
            "fewer_calls": fewer_calls,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.1)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.chunks, arguments.latency))


if __name__ == "__main__":
    main()
