"""Benchmark 4: search latency and recall as the collection grows.

Vectors are realistic: the local model (all-MiniLM-L6-v2, 384-d) embeds the
Cranfield abstracts, and each stored chunk is a blend of two of those
embeddings plus Gaussian noise (cosine about 0.9 to its nearest abstract),
so the collection has the clustered shape of real text, not uniform noise.
Each chunk keeps the text of the abstract it mostly comes from, so keyword
search sees real words (each text repeats, about size/1,400 times). The
queries are Cranfield's own questions (the first 100 of 225 by default),
embedded by the same model.

For every size, mode (vector, keyword, hybrid) and filter (none, or one
metadata value held by 1% of the chunks) it times:
- the SQL alone: the repository's one statement, executed and fetched;
- the HTTP route `POST /api/collections/{id}/search` of `ragstore serve` in
  its own process (query embeddings cached by a warm-up pass, so both
  columns time the same work);
- for vector search, the exact scan (no index) and recall@10 of the HNSW
  results against it.

The HNSW index is built after each load (as `ragstore` would after a bulk
import); its build time is reported too.

    python -m bench.search_scale [--sizes 10000,30000,100000] [--queries 100]
"""

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from app.runtime import Runtime
from app.search.filters import ComparisonFilter, compile_filter
from app.search.repository import SearchQuery, SearchRepository
from bench.common import chart, database, percentile, report, served, timer
from bench.ingest_vs_original import paragraphs

CRANFIELD = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "cranfield"
COLLECTION = "scale"
DOCUMENTS = 100
SHARDS = 100  # metadata "shard" takes 100 values: the filter keeps 1% of the chunks
SELECTIVE: dict[str, Any] = {"type": "eq", "key": "shard", "value": 7}
MODES = ("vector", "keyword", "hybrid")
K = 10
NOISE = 0.025  # per dimension: a chunk keeps cosine ~0.9 with its abstract


def source_texts(text_limit: int, query_limit: int) -> tuple[list[str], list[str]]:
    """Cranfield abstracts and questions; generated paragraphs when the corpus is absent."""
    if not CRANFIELD.is_dir():
        texts = paragraphs(min(text_limit, 400))
        return texts, texts[:query_limit]
    with (CRANFIELD / "corpus.jsonl").open() as lines:
        abstracts = [json.loads(line) for line in lines]
    with (CRANFIELD / "queries.jsonl").open() as lines:
        questions = [json.loads(line)["text"] for line in lines]
    texts = [f"{a['title']}. {a['text']}".strip() for a in abstracts]
    return [t for t in texts if len(t) > 20][:text_limit], questions[:query_limit]


def blend(
    base: npt.NDArray[np.float32], count: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """`count` unit vectors near the base ones, and the base each one mostly is."""
    primary = rng.integers(0, len(base), count)
    partner = rng.integers(0, len(base), count)
    share = rng.uniform(0.0, 0.4, (count, 1)).astype(np.float32)
    vectors = (1 - share) * base[primary] + share * base[partner]
    vectors += rng.normal(0, NOISE, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), primary


async def grow(
    connection: asyncpg.Connection,
    documents: list[uuid.UUID],
    start: int,
    vectors: npt.NDArray[np.float32],
    sources: npt.NDArray[np.int64],
    texts: list[str],
) -> float:
    """Append chunks start.. and rebuild the HNSW index; returns the build seconds."""
    per_document = -(-(start + len(vectors)) // DOCUMENTS)
    records = []
    for offset, (vector, source) in enumerate(zip(vectors, sources, strict=True)):
        position = start + offset
        records.append(
            (
                documents[min(position // per_document, DOCUMENTS - 1)],
                COLLECTION,
                position,  # unique per document because positions never repeat
                texts[source],
                json.dumps({"shard": position % SHARDS, "source": int(source)}),
                vector,
            )
        )
    await connection.execute("DROP INDEX IF EXISTS ix_chunks_embedding_hnsw")
    await connection.copy_records_to_table(
        "chunks",
        records=records,
        columns=("document_id", "collection_id", "chunk_index", "text", "metadata", "embedding"),
    )
    await connection.execute("SET maintenance_work_mem = '2GB'")
    with timer() as build:
        # The same index as the migration's (pgvector defaults m=16, ef_construction=64).
        await connection.execute(
            "CREATE INDEX ix_chunks_embedding_hnsw ON chunks "
            "USING hnsw (embedding vector_cosine_ops)"
        )
    await connection.execute("VACUUM ANALYZE chunks")
    return build[0]


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


def stats(seconds: list[float]) -> list[float]:
    return [percentile(seconds, share) * 1000 for share in (0.5, 0.95, 0.99)]


async def measure_size(
    runtime: Runtime,
    client: httpx.AsyncClient,
    base_url: str,
    size: int,
    questions: list[tuple[str, npt.NDArray[np.float32]]],
) -> list[list[Any]]:
    rows = []
    settings = runtime.settings
    selective = compile_filter(ComparisonFilter.model_validate(SELECTIVE))
    for mode in MODES:
        for filtered in (False, True):
            condition = selective if filtered else None
            sql, http, exact, recalls = [], [], [], []
            for text, vector in questions:
                query = SearchQuery(
                    collection_id=COLLECTION,
                    k=K,
                    vector=None if mode == "keyword" else vector,
                    text=text,
                    condition=condition,
                    candidates=max(K, settings.search_candidates),
                    rrf_k=settings.rrf_k,
                    keyword_weight=settings.rrf_keyword_weight,
                    language=settings.text_search_config,
                )
                async with runtime.database.session() as session:
                    repository = SearchRepository(session)
                    seconds, found = await timed(lambda: getattr(repository, mode)(query))  # noqa: B023
                    sql.append(seconds)
                    if mode == "vector":
                        exact_query = SearchQuery(**{**query.__dict__, "exact": True})
                        seconds, truth = await timed(lambda: repository.vector(exact_query))  # noqa: B023
                        exact.append(seconds)
                        expected = {row.id for row in truth}
                        recalls.append(len({row.id for row in found} & expected) / len(expected))
                body = {"query": text, "k": K, "mode": mode}
                if filtered:
                    body["filters"] = SELECTIVE
                route = f"{base_url}/api/collections/{COLLECTION}/search"
                seconds, response = await timed(lambda: client.post(route, json=body))  # noqa: B023
                response.raise_for_status()
                http.append(seconds)
            sql_stats, http_stats = stats(sql), stats(http)
            exact_p50 = stats(exact)[0] if exact else None
            rows.append(
                [
                    size,
                    mode,
                    "1% of chunks" if filtered else "none",
                    *sql_stats,
                    *http_stats,
                    (http_stats[0] / sql_stats[0] - 1) * 100,
                    exact_p50 if exact_p50 is not None else "",
                    exact_p50 / sql_stats[0] if exact_p50 is not None else "",
                    sum(recalls) / len(recalls) if recalls else "",
                ]
            )
    return rows


async def run(sizes: list[int], text_limit: int, query_limit: int) -> None:
    texts, question_texts = source_texts(text_limit, query_limit)
    rng = np.random.default_rng(7)
    with database() as (_, settings):
        runtime = await Runtime.open(settings)
        with timer() as embed_seconds:
            base = np.asarray(await runtime.embedding_model.aget_embeddings(texts), np.float32)
            question_vectors = await runtime.embedding_model.aget_embeddings(question_texts)
        questions = [
            (text, np.asarray(vector, np.float32))
            for text, vector in zip(question_texts, question_vectors, strict=True)
        ]
        assert settings.database_url
        connection = await asyncpg.connect(
            settings.database_url.replace("postgresql+asyncpg", "postgresql")
        )
        await register_vector(connection)
        await connection.execute("INSERT INTO collections (id, name) VALUES ($1, $1)", COLLECTION)
        documents = [uuid.uuid4() for _ in range(DOCUMENTS)]
        await connection.executemany(
            """INSERT INTO documents (id, collection_id, filename, content_type, size_bytes,
               content_sha256, status, chunk_size, chunk_overlap, cache_key)
               VALUES ($1, $2, $3, 'text/plain', 0, '', 'completed', 500, 50, '')""",
            [(document, COLLECTION, f"part-{n}.txt") for n, document in enumerate(documents)],
        )
        rows: list[list[Any]] = []
        builds: dict[int, float] = {}
        loaded = 0
        async with (
            served(settings, OPENAI_API_KEY="unused") as base_url,
            httpx.AsyncClient(timeout=120) as client,
        ):
            for size in sizes:
                vectors, sources = blend(base, size - loaded, rng)
                builds[size] = await grow(connection, documents, loaded, vectors, sources, texts)
                loaded = size
                for text, _ in questions:  # warm the server's query-embedding cache
                    await client.post(
                        f"{base_url}/api/collections/{COLLECTION}/search",
                        json={"query": text, "k": 1, "mode": "vector"},
                    )
                rows += await measure_size(runtime, client, base_url, size, questions)
        await connection.close()
        await runtime.close()
    columns = [
        "chunks",
        "mode",
        "filter",
        "SQL p50 ms",
        "SQL p95",
        "SQL p99",
        "HTTP p50 ms",
        "HTTP p95",
        "HTTP p99",
        "HTTP adds % (p50)",
        "exact p50 ms",
        "HNSW speedup",
        "recall@10",
    ]
    largest = [row for row in rows if row[0] == sizes[-1]]
    vector_row = next(row for row in largest if row[1] == "vector" and row[2] == "none")
    report(
        "search_scale",
        f"Search, k={K}, {len(questions)} queries, 384-d: at {sizes[-1]:,} chunks HNSW is "
        f"{vector_row[11]:.0f}x faster than exact at recall@10 {vector_row[12]:.3f}",
        columns,
        rows,
        {
            "sizes": sizes,
            "queries": len(questions),
            "k": K,
            "base_texts": len(texts),
            "noise_per_dimension": NOISE,
            "filter": SELECTIVE,
            "hnsw_build_seconds": builds,
            "embedding_seconds": embed_seconds[0],
            "model": settings.embedding_model,
        },
    )
    series = {
        f"{mode}{' + filter' if filtered else ''}": (
            [float(row[0]) for row in rows if row[1] == mode and (row[2] != "none") == filtered],
            [row[6] for row in rows if row[1] == mode and (row[2] != "none") == filtered],
        )
        for mode in MODES
        for filtered in (False, True)
    }
    series["exact vector (no index)"] = (
        [float(row[0]) for row in rows if row[1] == "vector" and row[2] == "none"],
        [row[10] for row in rows if row[1] == "vector" and row[2] == "none"],
    )
    chart(
        "search_scale",
        f"Search latency vs collection size (HTTP p50, k={K})",
        ("chunks in the collection", "milliseconds (log scale)"),
        series,
        log_y=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,30000,100000", help="comma-separated, growing")
    parser.add_argument("--queries", type=int, default=100, help="Cranfield questions asked")
    parser.add_argument("--texts", type=int, default=1400, help="base abstracts to embed")
    arguments = parser.parse_args()
    sizes = sorted(int(size) for size in arguments.sizes.split(","))
    asyncio.run(run(sizes, arguments.texts, arguments.queries))


if __name__ == "__main__":
    main()
