"""Benchmark 8: uploading the 117-page PDF again: time and embedding calls vs the first upload.

python -m bench.cache [--latency 0.1]
"""

import argparse
import asyncio
from pathlib import Path

from app.ingestion.prepared import ProcessingOptions
from app.ingestion.upload import describe_file
from app.runtime import Runtime
from bench.common import database, report, timer
from bench.corpus import GEOTOPO_PDF
from bench.upstream import embedding_calls, fake_upstream


async def run(latency: float, path: Path) -> None:
    with fake_upstream(latency) as upstream:
        overrides = {
            "embedding_provider": "openai",
            "embedding_model": "text-embedding-3-small",
            "embedding_dimensions": 384,
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
                rows.append([label, result.document.chunk_count, calls, seconds[0]])
            await runtime.close()
    first = rows[0][3]
    for row in rows:
        row.append(first / row[3])
    report(
        "cache",
        f"Re-upload of {path.name} ({latency * 1000:.0f} ms per embedding call)",
        ["upload", "chunks", "embedding calls", "seconds", "speed-up vs first"],
        rows,
        {"file": path.name, "latency_seconds": latency},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--file", type=Path, default=GEOTOPO_PDF)
    arguments = parser.parse_args()
    if not arguments.file.exists():
        raise SystemExit(f"{arguments.file} not found: this benchmark needs ../shared/corpus")
    asyncio.run(run(arguments.latency, arguments.file))


if __name__ == "__main__":
    main()
