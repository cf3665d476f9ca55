"""Benchmark 1b: one upload of a large text file over HTTP, at 1,536 and 384 dimensions.

What a user waits for: `POST /api/collections/{id}/documents` of a text file
(Cranfield's abstracts, repeated up to the size asked; generated prose when
the corpus is absent) to a served ragstore, until it answers 201 with the
document completed: parsed, chunked, embedded, written with its indexes and
committed. The upstream is the fake OpenAI server in its own process,
answering after `--latency` with dense vectors (each text the normalised sum
of fixed random vectors of its distinct words), so the HNSW graph is built
from vectors shaped like a model's, not from sparse hashed ones.

The original app's floor is its embedding calls alone: sequential calls of 5
chunks, each taking the latency, with nothing written anywhere.

    python -m bench.ingest_one_file [--megabytes 1] [--dimensions 1536,384]
        [--latency 0.1]
"""

import argparse
import asyncio
import json
import math
import tempfile
from pathlib import Path

import httpx

from bench.common import database, report, served, timer
from bench.corpus import CRANFIELD, paragraphs
from bench.upstream import (
    UPSTREAM_EMBEDDINGS,
    embedding_calls,
    fake_upstream,
    upstream_environment,
)

COLLECTION = "bench"


def large_text(megabytes: float) -> str:
    """About `megabytes` of prose: Cranfield abstracts, one paragraph each, repeated."""
    if CRANFIELD.is_dir():
        with (CRANFIELD / "corpus.jsonl").open() as lines:
            texts = [f"{row['title']}. {row['text']}" for row in map(json.loads, lines)]
    else:
        texts = paragraphs(2000)
    wanted = int(megabytes * 1_000_000)
    parts: list[str] = []
    size = 0
    while size < wanted:
        for text in texts:
            parts.append(text)
            size += len(text) + 2
            if size >= wanted:
                break
    return "\n\n".join(parts)


async def upload_once(path: Path, dimensions: int, latency: float) -> list[object]:
    with (
        fake_upstream(latency, dense=True) as upstream,
        database(**{**UPSTREAM_EMBEDDINGS, "embedding_dimensions": dimensions}) as (_, settings),
    ):
        environment = upstream_environment(
            upstream.url, RAGSTORE_EMBEDDING_DIMENSIONS=str(dimensions)
        )
        async with (
            served(settings, **environment) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=600) as client,
        ):
            created = await client.post(
                "/api/collections", json={"id": COLLECTION, "name": COLLECTION}
            )
            created.raise_for_status()
            with path.open("rb") as file, timer() as seconds:
                answer = await client.post(
                    f"/api/collections/{COLLECTION}/documents",
                    files={"file": (path.name, file, "text/plain")},
                )
            answer.raise_for_status()
            chunks = int(answer.json()["chunk_count"])
            calls = embedding_calls(upstream.url)
    floor = math.ceil(chunks / 5) * latency
    return [
        f"{dimensions:,}",
        chunks,
        calls,
        seconds[0],
        chunks / seconds[0],
        floor,
        floor / seconds[0],
    ]


async def run(megabytes: float, dimensions: list[int], latency: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "abstracts.txt"
        path.write_text(large_text(megabytes))
        rows = [await upload_once(path, size, latency) for size in dimensions]
    report(
        "ingest_one_file",
        f"One upload of a {megabytes:g} MB text over HTTP, {latency * 1000:.0f} ms per "
        "embedding call, dense vectors",
        [
            "dimensions",
            "chunks",
            "embedding calls",
            "seconds",
            "chunks/s",
            "original app's floor (s)",
            "x the original's floor",
        ],
        rows,
        {
            "megabytes": megabytes,
            "latency_seconds": latency,
            "corpus": "cranfield" if CRANFIELD.is_dir() else "generated",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=float, default=1.0, help="size of the text file")
    parser.add_argument("--dimensions", default="1536,384", help="comma-separated")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per embedding call")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.dimensions.split(",")]
    asyncio.run(run(arguments.megabytes, sizes, arguments.latency))


if __name__ == "__main__":
    main()
