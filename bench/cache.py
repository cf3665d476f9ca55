"""Benchmark 8: uploading the 117-page PDF again: time and embedding calls vs the first upload.

python -m bench.cache [--latency 0.1] [--dimensions 1536,384]

The upstream answers dense vectors (see bench.ingest_one_file). Each upload
into a new collection is that collection's first fill (its HNSW index built
over its first chunks, migration 0012).
"""

import argparse
import asyncio
from pathlib import Path

from app.ingestion.prepared import ProcessingOptions
from app.ingestion.upload import describe_file
from app.runtime import Runtime
from bench.common import database, dimension_list, report, timer
from bench.corpus import GEOTOPO_PDF
from bench.upstream import embedding_calls, fake_upstream


async def measure(latency: float, path: Path, dimensions: int) -> list[list[object]]:
    with fake_upstream(latency, dense=True) as upstream:
        overrides = {
            "embedding_provider": "openai",
            "embedding_model": "text-embedding-3-small",
            "embedding_dimensions": dimensions,
            "openai_base_url": upstream.url,
            "openai_api_key": "bench",
        }
        with database(**overrides) as (_, settings):
            runtime = await Runtime.open(settings)
            stored = await asyncio.to_thread(describe_file, path)
            options = ProcessingOptions(chunk_size=500, chunk_overlap=50)
            rows = []
            for label, collection in (
                ("first upload", "a"),
                ("same file, same collection (already processed)", "a"),
                ("same file, another collection (copied from the cache)", "b"),
            ):
                calls_before = embedding_calls(upstream.url)
                with timer() as seconds:
                    result = await runtime.ingestion.ingest(
                        stored, collection, options, create_collection=True
                    )
                calls = embedding_calls(upstream.url) - calls_before
                rows.append(
                    [f"{dimensions:,}", label, result.document.chunk_count, calls, seconds[0]]
                )
            await runtime.close()
    first = rows[0][4]
    for row in rows:
        row.append(first / row[4])
    return rows


async def run(latency: float, path: Path, dimensions: list[int]) -> None:
    rows = [row for size in dimensions for row in await measure(latency, path, size)]
    report(
        "cache",
        f"Re-upload of {path.name} ({latency * 1000:.0f} ms per embedding call, dense vectors)",
        ["dimensions", "upload", "chunks", "embedding calls", "seconds", "speed-up vs first"],
        rows,
        {"file": path.name, "latency_seconds": latency, "dimensions": dimensions},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--file", type=Path, default=GEOTOPO_PDF)
    parser.add_argument("--dimensions", type=dimension_list, default=[1536, 384])
    arguments = parser.parse_args()
    if not arguments.file.exists():
        raise SystemExit(f"{arguments.file} not found: this benchmark needs ../shared/corpus")
    sizes = arguments.dimensions
    asyncio.run(run(arguments.latency, arguments.file, sizes))


if __name__ == "__main__":
    main()
