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
chunks, each taking the latency, with nothing written anywhere. The fake
upstream runs on the same cores as ragstore, so the CPU time it spent until
the answers is reported too: a real provider spends none of it here.

The server is warm: before the timed upload it has answered a small one into
another collection, as a running service has (`--cold` times its very first
upload instead). Each run is a new database and server; `--repeat N` reports
the median of N runs and their range.

    python -m bench.ingest_one_file [--megabytes 1] [--dimensions 1536,384]
        [--latency 0.1] [--existing 100000] [--uploads 2] [--spread] [--cold]
        [--repeat 3] [--cores 2,1]

With `--existing N` the collection already holds N indexed chunks (the live
path: an upload into a collection that is searched); with `--uploads K`, K
copies of the file (numbered, so each is embedded) are uploaded at once,
into one collection, or with `--spread` each into a new collection of its own.
With `--cores 2,1` each run is made on 2 cores and then on 1 (everything pinned:
this process, the database, the server and the fake upstream, like `taskset`),
alternately, so both see the same hour of the machine; each row is a core count,
with its speed-up over the fewest cores.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import numpy as np
from pgvector.asyncpg import register_vector

from app.core.config import Settings
from app.db.database import Database
from bench.common import database, dimension_list, median, report, served
from bench.corpus import CRANFIELD, paragraphs
from bench.search_scale import DOCUMENTS, blend, chunk_rows, grow, source_texts
from bench.seed import seed_documents
from bench.upstream import (
    UPSTREAM_EMBEDDINGS,
    cpu_seconds,
    embedding_calls,
    fake_upstream,
    upstream_environment,
)
from tests.support.fake_openai import dense_embed_texts

COLLECTION = "bench"
WARM_UP = "warm-up"


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


async def preload(settings: Settings, dimensions: int, existing: int) -> None:
    """`existing` chunks in the collection before the upload, indexed (benchmark 4's
    loader: Cranfield abstracts blended, with the upstream's dense vectors of the text)."""
    texts, _ = source_texts(1400, 0)
    base = dense_embed_texts(texts, dimensions)
    vectors, sources, blended = blend(base, texts, existing, np.random.default_rng(3))
    database = await Database.open(settings)
    try:
        documents = await seed_documents(
            database, COLLECTION, [f"existing-{n}.txt" for n in range(DOCUMENTS)]
        )
        rows = chunk_rows(documents, 0, vectors, sources, blended, COLLECTION)
        assert settings.database_url
        connection = await asyncpg.connect(
            settings.database_url.replace("postgresql+asyncpg", "postgresql")
        )
        await register_vector(connection)
        try:
            await grow(database, connection, rows)
        finally:
            await connection.close()
    finally:
        await database.close()


async def upload_files(
    paths: list[Path], dimensions: int, latency: float, existing: int, spread: bool, cold: bool
) -> "Timed":
    """The files uploaded at once (into a new database and server): their chunks, the
    embedding calls, the seconds until every upload had answered and until their
    collections' HNSW indexes were built."""
    with (
        fake_upstream(latency, dense=True) as upstream,
        database(**{**UPSTREAM_EMBEDDINGS, "embedding_dimensions": dimensions}) as (_, settings),
    ):
        if existing:
            await preload(settings, dimensions, existing)
        environment = upstream_environment(
            upstream.url, RAGSTORE_EMBEDDING_DIMENSIONS=str(dimensions)
        )
        async with (
            served(settings, **environment) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=600) as client,
        ):
            contents = {path.name: path.read_bytes() for path in paths}
            collection_of = {
                name: f"{COLLECTION}-{number}" if spread else COLLECTION
                for number, name in enumerate(contents)
            }
            for collection in sorted(set(collection_of.values())):
                if not existing or collection != COLLECTION:
                    created = await client.post(
                        "/api/collections", json={"id": collection, "name": collection}
                    )
                    created.raise_for_status()

            async def upload(name: str, collection: str, content: bytes) -> int:
                answer = await client.post(
                    f"/api/collections/{collection}/documents",
                    files={"file": (name, content, "text/plain")},
                )
                answer.raise_for_status()
                return int(answer.json()["chunk_count"])

            if not cold:
                # A served ragstore has answered uploads before: its first one also
                # builds the SDK's and SQLAlchemy's lazy structures (a profile showed
                # them, though cold and warm medians came out the same: 2.86 vs 2.87 s).
                await client.post("/api/collections", json={"id": WARM_UP, "name": WARM_UP})
                await upload("warm-up.txt", WARM_UP, "\n\n".join(paragraphs(20)).encode())

            before = embedding_calls(upstream.url)
            upstream_cpu = cpu_seconds(upstream)
            started = time.perf_counter()
            chunks = sum(
                await asyncio.gather(
                    *(upload(name, collection_of[name], contents[name]) for name in contents)
                )
            )
            answered = time.perf_counter() - started
            upstream_cpu = cpu_seconds(upstream) - upstream_cpu
            # A small first fill answers before its HNSW index is built, and a write into
            # an indexed collection before its chunks join the graph (app/document/
            # index_builds.py): when that is done too.
            await until_indexed(settings, sorted(set(collection_of.values())))
            indexed = time.perf_counter() - started
            calls = embedding_calls(upstream.url) - before
    return Timed(chunks, calls, answered, indexed, upstream_cpu)


@dataclass(frozen=True)
class Timed:
    chunks: int
    calls: int
    answered_after: float
    indexed_after: float
    # CPU seconds the fake upstream spent until the answers, on the cores measured.
    upstream_cpu: float


async def until_indexed(settings: Settings, collections: list[str]) -> None:
    assert settings.database_url
    connection = await asyncpg.connect(
        settings.database_url.replace("postgresql+asyncpg", "postgresql")
    )
    try:
        while True:
            if await connection.fetchval(INDEXED, collections):
                return
            await asyncio.sleep(0.005)  # polled: the build is in another process
    finally:
        await connection.close()


INDEXED = """
    SELECT bool_and(EXISTS (
        SELECT 1 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_am a ON a.oid = i.relam
        WHERE x.indrelid = to_regclass(chunk_partition_name(c)) AND a.amname = 'hnsw'
          AND x.indisvalid)
        -- and every chunk in it (migration 0014: a write into an indexed collection hands
        -- its chunks to the graph after its answer)
        AND NOT EXISTS (SELECT 1 FROM chunks k WHERE k.collection_id = c AND NOT k.in_graph)
        -- and its BM25 postings (migration 0015: a first fill's are built after its answer)
        AND NOT EXISTS (SELECT 1 FROM keyword_collections k WHERE k.collection_id = c
                        AND k.deferred))
    FROM unnest($1::text[]) c
"""


@contextlib.contextmanager
def pinned_to(cores: int | None) -> Iterator[None]:
    """This process, and the processes it starts meanwhile, on the first `cores` cores
    (all of them for None)."""
    if cores is None:
        yield
        return
    every = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(every)[:cores])
    try:
        yield
    finally:
        os.sched_setaffinity(0, every)


@dataclass(frozen=True)
class Workload:
    megabytes: float
    latency: float
    existing: int
    uploads: int
    spread: bool
    cold: bool


async def run(
    workload: Workload, dimensions: list[int], repeat: int, cores: list[int] | None
) -> None:
    core_counts: list[int | None] = list(cores) if cores else [None]
    with tempfile.TemporaryDirectory() as folder:
        text = large_text(workload.megabytes)
        paths = []
        for number in range(workload.uploads):
            path = Path(folder) / f"abstracts-{number}.txt"
            # Distinct bytes, so the cache embeds each file: the same text, numbered.
            path.write_text(f"Copy {number}.\n\n{text}")
            paths.append(path)
        rows = []
        for size in dimensions:
            runs: dict[int | None, list[Timed]] = {count: [] for count in core_counts}
            for _ in range(repeat):
                for count in core_counts:
                    with pinned_to(count):
                        runs[count].append(
                            await upload_files(
                                paths,
                                size,
                                workload.latency,
                                workload.existing,
                                workload.spread,
                                workload.cold,
                            )
                        )
            fewest = core_counts[-1]
            for count in core_counts:
                rows.append(row(size, count, workload, runs[count], runs[fewest]))
    report(
        "ingest_one_file"
        + (f"_{workload.existing}" if workload.existing else "")
        + (f"_x{workload.uploads}" if workload.uploads > 1 else "")
        + ("_spread" if workload.spread else "")
        + ("_cores" if cores else ""),
        f"{workload.uploads} upload(s) of a {workload.megabytes:g} MB text over HTTP at once, "
        f"into {'a new collection each' if workload.spread else 'one collection'} "
        f"(first holding {workload.existing:,} chunks), {workload.latency * 1000:.0f} ms per "
        f"embedding call, dense vectors, {'cold' if workload.cold else 'warm'} server",
        [
            "dimensions",
            "cores",
            "chunks before",
            "uploads",
            "chunks",
            "embedding calls",
            f"seconds (median of {repeat})",
            "range",
            "chunks/s",
            "original app's floor (s)",
            "x the original's floor",
            "seconds until indexed (median)",
            "fake upstream's CPU s to the answers (median)",
            "x the fewest cores' speed (answers / indexed)",
        ],
        rows,
        {
            "megabytes": workload.megabytes,
            "latency_seconds": workload.latency,
            "existing_chunks": workload.existing,
            "uploads": workload.uploads,
            "spread": workload.spread,
            "warm_server": not workload.cold,
            "repeat": repeat,
            "cores": cores or "all",
            "alternating": bool(cores),
            "corpus": "cranfield" if CRANFIELD.is_dir() else "generated",
        },
    )


def row(
    size: int, cores: int | None, workload: Workload, runs: list[Timed], fewest: list[Timed]
) -> list[object]:
    """A table row: the medians of `runs`, and their speed-up over the `fewest` cores' runs."""
    chunks, calls = runs[0].chunks, runs[0].calls
    times = sorted(run.answered_after for run in runs)
    middle = median(times)
    indexed = median([run.indexed_after for run in runs])
    floor = math.ceil(chunks / 5) * workload.latency
    speed_up = (
        f"{median([r.answered_after for r in fewest]) / middle:.2f}x / "
        f"{median([r.indexed_after for r in fewest]) / indexed:.2f}x"
    )
    return [
        f"{size:,}",
        "all" if cores is None else cores,
        f"{workload.existing:,}",
        workload.uploads,
        chunks,
        calls,
        middle,
        f"{times[0]:.2f}-{times[-1]:.2f}",
        chunks / middle,
        floor,
        floor / middle,
        indexed,
        median([run.upstream_cpu for run in runs]),
        speed_up,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=float, default=1.0, help="size of the text file")
    parser.add_argument("--dimensions", type=dimension_list, default=[1536, 384])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per embedding call")
    parser.add_argument(
        "--existing", type=int, default=0, help="chunks in the collection before (indexed)"
    )
    parser.add_argument("--uploads", type=int, default=1, help="files uploaded at once")
    parser.add_argument(
        "--spread", action="store_true", help="each upload into a new collection of its own"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="time the server's first upload (by default a small one warms it up first)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per dimension (median)")
    parser.add_argument(
        "--cores",
        type=dimension_list,
        default=None,
        help="core counts to run on in turn, most first (2,1); all of them by default",
    )
    arguments = parser.parse_args()
    workload = Workload(
        arguments.megabytes,
        arguments.latency,
        arguments.existing,
        arguments.uploads,
        arguments.spread,
        arguments.cold,
    )
    asyncio.run(run(workload, arguments.dimensions, arguments.repeat, arguments.cores))


if __name__ == "__main__":
    main()
