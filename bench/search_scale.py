"""Benchmark 4: search latency and recall as the collection grows.

Vectors are realistic: the local model (all-MiniLM-L6-v2, 384-d) embeds the
Cranfield abstracts, and each stored chunk is a blend of two of those
embeddings plus Gaussian noise (cosine about 0.9 to its nearest abstract),
so the collection has the clustered shape of real text, not uniform noise.
Each chunk's text is the abstract it mostly comes from followed by the
partner abstract's first words in the same share, so keyword search sees real
words and no two chunks' word statistics are simply copies. The
queries are Cranfield's own questions (the first 100 of 225 by default),
embedded by the same model.

For every size, mode (vector, keyword, hybrid) and filter (none, or one
metadata value held by 1% of the chunks) it times:
- the SQL alone: the repository's one statement, executed and fetched, on a
  connection already checked out and in its transaction (the pool's ping and
  BEGIN are the route's cost, so they count in the HTTP column);
- the HTTP route `POST /api/collections/{id}/search` of `ragstore serve` in
  its own process (query embeddings cached by a warm-up pass, so both
  columns time the same work);
- for vector search, the exact scan (no index) and recall@10 of the HNSW
  results against it.

The HNSW index is built after each load (as `ragstore` would after a bulk
import); its build time is reported too.

With `--ef-search 40,100,400` it also sweeps pgvector's `hnsw.ef_search` (the
size of the candidate list an index scan keeps, RAGSTORE_HNSW_EF_SEARCH) at
every size, for each index build in `--index m:ef_construction,...` (the
first, pgvector's default 16:64, is the migration's; the others are rebuilt
on the same rows). Per cell: SQL latency, recall@10, the worst question's
recall, the source recall (the share of the exact top 10's source abstracts
that the HNSW results also return: the texts a reader gets, since chunks of
one source share its text) and the distance ratio (summed cosine distances of
the HNSW results over those of the exact ones; 1.000 means chunks exactly as
close as the true nearest). That table is saved as `<name>_ef_search`.

With `--dimensions N` other than 384 the vectors come from the fake OpenAI
upstream instead, at N dimensions (1,536: OpenAI's default model): each text
the normalised sum of fixed random vectors of its words. The abstracts,
the questions and the served ragstore's query embeddings all come from it,
so the questions are embedded as the chunks were.

    python -m bench.search_scale [--sizes 10000,30000,100000] [--queries 100]
        [--modes vector,keyword,hybrid] [--ef-search 40,100,200,400,800]
        [--index 16:64,32:128] [--name search_scale] [--dimensions 384]
"""

import argparse
import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector
from sqlalchemy import text as sql_text

from app.db.database import Database
from app.db.types import HNSW_INDEX_PREDICATE, hnsw_index_column
from app.runtime import Runtime
from app.search.filters import ComparisonFilter, compile_filter
from app.search.repository import SearchPlan, SearchRepository
from bench.common import chart, console, database, percentile, report, served, timer
from bench.corpus import CRANFIELD, paragraphs
from bench.http_floor import http_floor
from bench.seed import copy_chunks, seed_documents
from bench.upstream import UPSTREAM_EMBEDDINGS, fake_upstream, upstream_environment

COLLECTION = "scale"
SMALL = "small"  # a small collection measured alone and beside the big one (--small)
DOCUMENTS = 100
SHARDS = 100  # metadata "shard" takes 100 values: the filter keeps 1% of the chunks
SELECTIVE: dict[str, Any] = {"type": "eq", "key": "shard", "value": 7}
MODES = ("vector", "keyword", "hybrid")
K = 10
DEFAULT_INDEX = (16, 64)  # pgvector's defaults (m, ef_construction), as in the migration
LOCAL_DIMENSIONS = 384  # all-MiniLM-L6-v2's
# Per dimension at 384: a chunk keeps cosine ~0.9 with its abstract. The noise's length
# grows with the square root of the dimension, so it is scaled to keep that cosine at any
# dimension (unscaled, 1,536-d chunks kept 0.64 and were mostly noise).
NOISE = 0.025


def noise_per_dimension(dimensions: int) -> float:
    return NOISE * math.sqrt(LOCAL_DIMENSIONS / dimensions)


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
    base: npt.NDArray[np.float32], texts: list[str], count: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], list[str]]:
    """`count` unit vectors near the base ones, the base each one mostly is, and texts
    blended alike: the primary abstract, then the partner's first words in the vector's
    share (so texts differ as the vectors do, and word statistics are not copies)."""
    primary = rng.integers(0, len(base), count)
    partner = rng.integers(0, len(base), count)
    share = rng.uniform(0.0, 0.4, (count, 1)).astype(np.float32)
    vectors = (1 - share) * base[primary] + share * base[partner]
    vectors += rng.normal(0, noise_per_dimension(base.shape[1]), vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = [text.split() for text in texts]
    blended = [
        " ".join([texts[first], *words[second][: round(part * len(words[second]))]])
        for first, second, part in zip(primary, partner, share[:, 0], strict=True)
    ]
    return vectors.astype(np.float32), primary, blended


def chunk_rows(
    documents: list[uuid.UUID],
    start: int,
    vectors: npt.NDArray[np.float32],
    sources: npt.NDArray[np.int64],
    texts: list[str],
    collection: str = COLLECTION,
) -> list[tuple[Any, ...]]:
    """Chunks start.. spread evenly over the documents, each with its shard and source."""
    per_document = -(-(start + len(vectors)) // DOCUMENTS)
    return [
        (
            documents[min((start + offset) // per_document, DOCUMENTS - 1)],
            collection,
            start + offset,  # unique per document because positions never repeat
            text,
            json.dumps({"shard": (start + offset) % SHARDS, "source": int(source)}),
            vector,
        )
        for offset, (vector, source, text) in enumerate(zip(vectors, sources, texts, strict=True))
    ]


COPY_SLICE = 50_000  # rows per COPY: the keyword trigger's transition table stays bounded


async def grow(
    database: Database,
    connection: asyncpg.Connection,
    rows: list[tuple[Any, ...]],
    vector_index: bool = True,
) -> float:
    """Append the chunks (indexes dropped) and rebuild them; returns the HNSW build seconds
    (0 without `vector_index`, for benchmarks of keyword search alone).

    The keyword triggers fill the BM25 tables as in service; only the postings' two
    indexes are dropped meanwhile and rebuilt after, as a bulk load would.
    """
    # Each collection's table of postings made first (migrations 0016 and 0017: named by
    # its statistics row's key), so that its own primary key, like the partitioned index,
    # is dropped and rebuilt exactly as the migrations define them, whatever that is today.
    for collection in sorted({row[1] for row in rows}):
        await connection.execute(
            "INSERT INTO keyword_collections (collection_id) VALUES ($1) ON CONFLICT DO NOTHING",
            collection,
        )
        await connection.execute(
            "SELECT keyword_postings_partition(postings_key) FROM keyword_collections "
            "WHERE collection_id = $1",
            collection,
        )
    # The definition of a partitioned index reads ON ONLY, which would not build the
    # partitions' own.
    impact_index = await connection.fetchval(
        "SELECT replace(pg_get_indexdef('ix_keyword_postings_term_id_impact'::regclass), "
        "' ON ONLY ', ' ON ')"
    )
    primary_keys = await connection.fetch(
        """
        SELECT format('ALTER TABLE %I ADD CONSTRAINT %I %s', c.conrelid::regclass::text,
                      c.conname, pg_get_constraintdef(c.oid)) AS made,
               format('ALTER TABLE %I DROP CONSTRAINT %I', c.conrelid::regclass::text,
                      c.conname) AS dropped
        FROM pg_constraint c JOIN pg_inherits i ON i.inhrelid = c.conrelid
        WHERE i.inhparent = 'keyword_postings'::regclass AND c.contype = 'p'
        """
    )
    await drop_vector_indexes(connection)
    await connection.execute("DROP INDEX ix_keyword_postings_term_id_impact")
    for key in primary_keys:
        await connection.execute(key["dropped"])
    for start in range(0, len(rows), COPY_SLICE):
        await copy_chunks(database, rows[start : start + COPY_SLICE], vector_index=False)
    await connection.execute("SET maintenance_work_mem = '2GB'")
    for key in primary_keys:
        await connection.execute(key["made"])
    await connection.execute(impact_index)
    await connection.execute("VACUUM ANALYZE keyword_postings, keyword_terms")
    if not vector_index:
        return 0.0
    # The same index as the migration's (pgvector defaults m=16, ef_construction=64).
    seconds = await build_index(connection, DEFAULT_INDEX)
    await connection.execute("VACUUM ANALYZE chunks")
    return seconds


async def build_index(connection: asyncpg.Connection, index: tuple[int, int]) -> float:
    """(Re)build the HNSW index, of the expression the migrations give this dimension, with
    (m, ef_construction); returns the build seconds."""
    m, ef_construction = index
    dimensions = await connection.fetchval(
        "SELECT atttypmod FROM pg_attribute "
        "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
    )
    partitions = await drop_vector_indexes(connection)
    await connection.execute("SET maintenance_work_mem = '2GB'")
    with timer() as build:
        for partition in partitions:
            await connection.execute(
                f"CREATE INDEX {partition}_embedding_hnsw ON {partition} USING hnsw "
                f"({hnsw_index_column(dimensions)}) "
                f"WITH (m = {m}, ef_construction = {ef_construction}) "
                f"WHERE {HNSW_INDEX_PREDICATE}"
            )
    return build[0]


async def drop_vector_indexes(connection: asyncpg.Connection) -> list[str]:
    """Drop the HNSW index of every collection's partition of chunks; returns the partitions."""
    partitions: list[str] = [
        row[0]
        for row in await connection.fetch(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'chunks'::regclass ORDER BY 1"
        )
    ]
    for partition in partitions:
        await connection.execute(f"DROP INDEX IF EXISTS {partition}_embedding_hnsw")
    return partitions


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


async def timed_post(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> float:
    seconds, response = await timed(lambda: client.post(url, json=body))
    response.raise_for_status()
    return seconds


def tie_aware_overlap(found: Any, truth: Any) -> float:
    """The share of the found rows that belong in an exact top k: scoring at least the
    exact k-th score (chunks of one source share its text, so equal scores are common and
    which of them the exact ranking lists is arbitrary)."""
    if not truth:
        return 1.0
    floor = min(float(row.score) for row in truth) - 1e-9
    return min(sum(float(row.score) >= floor for row in found), len(truth)) / len(truth)


def stats(seconds: list[float]) -> list[float]:
    return [percentile(seconds, share) * 1000 for share in (0.5, 0.95, 0.99)]


@asynccontextmanager
async def statement_session(runtime: Runtime, ef_search: int | None = None) -> AsyncIterator[Any]:
    """A session that already holds its connection (checked out, pinged, BEGIN sent), so a
    timing around one statement covers that statement alone; at `ef_search` if given."""
    async with runtime.database.session() as session:
        # Local to this transaction: the pool's other connections keep the default.
        await session.execute(
            sql_text("SELECT set_config('hnsw.ef_search', :ef, true)"),
            {"ef": str(ef_search or runtime.settings.hnsw_ef_search)},
        )
        yield session


def vector_query(
    vector: npt.NDArray[np.float32], filtered: bool, exact: bool = False
) -> SearchPlan:
    return SearchPlan(
        collection_id=COLLECTION,
        k=K,
        vector=vector,
        condition=compile_filter(ComparisonFilter.model_validate(SELECTIVE)) if filtered else None,
        exact=exact,
    )


def distance_ratio(found: Any, truth: Any) -> float:
    """Summed cosine distance of the found rows over that of the true nearest ones."""
    return sum(1 - row.similarity for row in found) / max(
        sum(1 - row.similarity for row in truth), 1e-12
    )


def recall(found: Any, truth: Any, key: Callable[[Any], Any]) -> float:
    expected = {key(row) for row in truth}
    return len({key(row) for row in found} & expected) / len(expected)


def source(row: Any) -> Any:
    return row.metadata["source"]


def chunk_id(row: Any) -> Any:
    return row.id


async def exact_results(
    runtime: Runtime, questions: list[tuple[str, npt.NDArray[np.float32]]], filtered: bool
) -> tuple[list[Any], float]:
    """Every question's true nearest chunks (an exact scan), and the scan's p50 ms."""
    truths, seconds_list = [], []
    for _, vector in questions:
        exact_query = vector_query(vector, filtered, exact=True)
        async with statement_session(runtime) as session:
            repository = SearchRepository(session)
            seconds, truth = await timed(lambda: repository.vector(exact_query))  # noqa: B023
        truths.append(truth)
        seconds_list.append(seconds)
    return truths, stats(seconds_list)[0]


async def search_at(
    runtime: Runtime,
    questions: list[tuple[str, npt.NDArray[np.float32]]],
    filtered: bool,
    ef: int,
) -> list[tuple[float, Any]]:
    """Each question's vector search at one hnsw.ef_search: (seconds, rows)."""
    results = []
    for _, vector in questions:
        query = vector_query(vector, filtered)
        async with statement_session(runtime, ef) as session:
            repository = SearchRepository(session)
            results.append(await timed(lambda: repository.vector(query)))  # noqa: B023
    return results


async def sweep_ef_search(
    runtime: Runtime,
    size: int,
    index: tuple[str, float],
    questions: list[tuple[str, npt.NDArray[np.float32]]],
    exact: dict[bool, tuple[list[Any], float]],
    ef_values: list[int],
) -> list[list[Any]]:
    """Vector search SQL at each hnsw.ef_search against the exact results."""
    rows = []
    for filtered, (truths, exact_p50) in exact.items():
        # An untimed pass at the largest ef_search first, so a freshly built index is in
        # memory and the first ef_search timed is not the one that pays for reading it.
        await search_at(runtime, questions, filtered, max(ef_values))
        for ef in ef_values:
            seconds_list, recalls, source_recalls, ratios = [], [], [], []
            results = await search_at(runtime, questions, filtered, ef)
            for (seconds, found), truth in zip(results, truths, strict=True):
                seconds_list.append(seconds)
                recalls.append(recall(found, truth, chunk_id))
                source_recalls.append(recall(found, truth, source))
                ratios.append(distance_ratio(found, truth))
            latency = stats(seconds_list)
            rows.append(
                [
                    size,
                    *index,
                    ef,
                    "1% of chunks" if filtered else "none",
                    *latency,
                    exact_p50,
                    exact_p50 / latency[0],
                    sum(recalls) / len(recalls),
                    min(recalls),
                    sum(source_recalls) / len(source_recalls),
                    sum(ratios) / len(ratios),
                ]
            )
    return rows


async def measure_size(
    runtime: Runtime,
    client: httpx.AsyncClient,
    base_url: str,
    size: int,
    questions: list[tuple[str, npt.NDArray[np.float32]]],
    modes: list[str],
    collection: str = COLLECTION,
    label: str | None = None,
) -> list[list[Any]]:
    """Each mode with and without the filter: SQL and HTTP latency, and against the exact
    search (vector: an exact scan; keyword: exhaustive BM25) its p50 and recall@10."""
    rows = []
    settings = runtime.settings
    selective = compile_filter(ComparisonFilter.model_validate(SELECTIVE))
    for mode in modes:
        for filtered in (False, True):
            condition = selective if filtered else None
            sql, http, exact, recalls = [], [], [], []
            for number, (text, vector) in enumerate(questions):
                query = SearchPlan(
                    collection_id=collection,
                    k=K,
                    vector=None if mode == "keyword" else vector,
                    text=text,
                    condition=condition,
                    candidates=max(K, settings.search_candidates),
                    rrf_k=settings.rrf_k,
                    keyword_weight=settings.rrf_keyword_weight,
                    language=settings.text_search_config,
                    bm25_k1=settings.bm25_k1,
                    bm25_b=settings.bm25_b,
                    bm25_depth=settings.bm25_depth,
                )
                body = {"query": text, "k": K, "mode": mode}
                if filtered:
                    body["filters"] = SELECTIVE
                route = f"{base_url}/api/collections/{collection}/search"
                # Whichever runs first brings the question's pages into memory for both:
                # the order alternates, so neither column always pays it.
                if number % 2:
                    http.append(await timed_post(client, route, body))
                async with statement_session(runtime) as session:
                    repository = SearchRepository(session)
                    seconds, found = await timed(lambda: getattr(repository, mode)(query))  # noqa: B023
                    sql.append(seconds)
                    if mode == "vector":
                        exact_query = replace(query, exact=True)
                        seconds, truth = await timed(lambda: repository.vector(exact_query))  # noqa: B023
                        exact.append(seconds)
                        recalls.append(recall(found, truth, chunk_id))
                    elif mode == "keyword":
                        exhaustive = replace(query, bm25_exact=True)
                        seconds, truth = await timed(lambda: repository.keyword(exhaustive))  # noqa: B023
                        exact.append(seconds)
                        recalls.append(tie_aware_overlap(found, truth))
                if not number % 2:
                    http.append(await timed_post(client, route, body))
            sql_stats, http_stats = stats(sql), stats(http)
            exact_p50 = stats(exact)[0] if exact else None
            rows.append(
                [
                    label or size,
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


@contextmanager
def vector_source(dimensions: int) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Settings overrides and the served ragstore's environment: the local model at 384
    dimensions, the fake upstream's dense vectors (in its own process) at any other."""
    if dimensions == LOCAL_DIMENSIONS:
        yield {}, {"OPENAI_API_KEY": "unused"}
        return
    with fake_upstream(0.0, dense=True) as upstream:
        overrides = {
            **UPSTREAM_EMBEDDINGS,
            "embedding_dimensions": dimensions,
            "openai_base_url": upstream.url,
            "openai_api_key": "bench",
        }
        yield (
            overrides,
            upstream_environment(upstream.url, RAGSTORE_EMBEDDING_DIMENSIONS=str(dimensions)),
        )


async def run(
    sizes: list[int],
    text_limit: int,
    query_limit: int,
    modes: list[str],
    ef_values: list[int],
    indexes: list[tuple[int, int]],
    name: str,
    small: int = 0,
    dimensions: int = LOCAL_DIMENSIONS,
) -> None:
    texts, question_texts = source_texts(text_limit, query_limit)
    rng = np.random.default_rng(7)
    with (
        vector_source(dimensions) as (overrides, environment),
        database(**overrides) as (_, settings),
    ):
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
        documents = await seed_documents(
            runtime.database, COLLECTION, [f"part-{n}.txt" for n in range(DOCUMENTS)]
        )
        rows: list[list[Any]] = []
        sweep: list[list[Any]] = []
        builds: dict[int, float] = {}
        loaded = 0
        async with (
            served(settings, **environment) as base_url,
            httpx.AsyncClient(timeout=120) as client,
        ):
            if small:
                # The same small collection measured alone, then beside the largest size.
                small_documents = await seed_documents(
                    runtime.database, SMALL, [f"small-{n}.txt" for n in range(DOCUMENTS)]
                )
                vectors, sources, blended = blend(base, texts, small, rng)
                small_rows = chunk_rows(small_documents, 0, vectors, sources, blended, SMALL)
                await grow(runtime.database, connection, small_rows)
                await warm_query_cache(client, base_url, questions)
                rows += await measure_size(
                    runtime, client, base_url, small, questions, modes, SMALL, f"{small:,} alone"
                )
            for size in sizes:
                vectors, sources, blended = blend(base, texts, size - loaded, rng)
                new_rows = chunk_rows(documents, loaded, vectors, sources, blended)
                builds[size] = await grow(runtime.database, connection, new_rows)
                loaded = size
                await warm_query_cache(client, base_url, questions)
                rows += await measure_size(runtime, client, base_url, size, questions, modes)
                if ef_values:
                    exact = {f: await exact_results(runtime, questions, f) for f in (False, True)}
                    for index in indexes:
                        seconds = builds[size]
                        if index != DEFAULT_INDEX:
                            seconds = await build_index(connection, index)
                        label = (f"{index[0]}/{index[1]}", seconds)
                        sweep += await sweep_ef_search(
                            runtime, size, label, questions, exact, ef_values
                        )
                    if indexes[-1] != DEFAULT_INDEX and size != sizes[-1]:
                        await build_index(connection, DEFAULT_INDEX)  # the next size grows it
            if small:
                beside = f"{small:,} beside {sizes[-1]:,}"
                rows += await measure_size(
                    runtime, client, base_url, small, questions, modes, SMALL, beside
                )
            overhead = await measure_overhead(runtime, client, base_url, questions)
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
        "speedup vs exact",
        "recall@10 (keyword: tie-aware overlap with exhaustive BM25)",
    ]
    largest = [row for row in rows if row[0] == sizes[-1]]
    vector_row = next(row for row in largest if row[1] == "vector" and row[2] == "none")
    inputs = {
        "sizes": sizes,
        "queries": len(questions),
        "k": K,
        "base_texts": len(texts),
        "noise_per_dimension": noise_per_dimension(dimensions),
        "filter": SELECTIVE,
        "hnsw_build_seconds": builds,
        "hnsw_ef_search": settings.hnsw_ef_search,
        "http_floor_ms_p50_p95_p99": overhead["HTTP floor, no database"],
        "overhead_ms_p50_p95_p99": overhead,
        "embedding_seconds": embed_seconds[0],
        "model": settings.embedding_model,
        "dimensions": dimensions,
        "vectors": "local model" if dimensions == LOCAL_DIMENSIONS else "dense, fake upstream",
        "small_collection": small,
        "bm25": {"k1": settings.bm25_k1, "b": settings.bm25_b, "depth": settings.bm25_depth},
    }
    report(
        name,
        f"Search, k={K}, {len(questions)} queries, {dimensions:,}-d: at {sizes[-1]:,} chunks "
        f"HNSW is {vector_row[11]:.0f}x faster than exact at recall@10 {vector_row[12]:.3f}",
        columns,
        rows,
        inputs,
    )
    if sweep:
        report_sweep(name, sweep, inputs)
    rows = [row for row in rows if isinstance(row[0], int)]  # the curve: sizes, not labels
    if len(sizes) > 1:  # a curve needs two sizes
        series = {
            f"{mode}{' + filter' if filtered else ''}": (
                [
                    float(row[0])
                    for row in rows
                    if row[1] == mode and (row[2] != "none") == filtered
                ],
                [row[6] for row in rows if row[1] == mode and (row[2] != "none") == filtered],
            )
            for mode in modes
            for filtered in (False, True)
        }
        series["exact vector (no index)"] = (
            [float(row[0]) for row in rows if row[1] == "vector" and row[2] == "none"],
            [row[10] for row in rows if row[1] == "vector" and row[2] == "none"],
        )
        chart(
            name,
            f"Search latency vs collection size (HTTP p50, k={K})",
            ("chunks in the collection", "milliseconds (log scale)"),
            series,
            log_y=True,
        )


OVERHEAD_REPETITIONS = 3


async def warm_query_cache(
    client: httpx.AsyncClient, base_url: str, questions: list[tuple[str, Any]]
) -> None:
    """Every question asked once, so the server's query-embedding cache holds it."""
    for text, _ in questions:
        await client.post(
            f"{base_url}/api/collections/{COLLECTION}/search",
            json={"query": text, "k": 1, "mode": "vector"},
        )


async def measure_overhead(
    runtime: Runtime,
    client: httpx.AsyncClient,
    base_url: str,
    questions: list[tuple[str, npt.NDArray[np.float32]]],
) -> dict[str, list[float]]:
    """Where the HTTP column's time goes, unfiltered vector search at the current size.

    Four contenders: the SQL alone, the static and the database floor
    (bench/http_floor.py), and ragstore's route. After an untimed pass of
    all, each answers every question in a block of its own (a server
    answering one request after another stays hot in the CPU's caches, as
    in service), and the blocks rotate over three repetitions so a slow
    spell of the machine hits them alike. p50/p95/p99 ms each.
    """
    route = f"/api/collections/{COLLECTION}/search"
    bodies = {text: {"query": text, "k": K, "mode": "vector"} for text, _ in questions}
    sample = (await client.post(base_url + route, json=bodies[questions[0][0]])).json()
    vectors = {text: vector.tolist() for text, vector in questions}
    assert runtime.settings.database_url

    async def sql_alone(text: str, vector: npt.NDArray[np.float32]) -> float:
        query = vector_query(vector, filtered=False)
        async with statement_session(runtime) as session:
            repository = SearchRepository(session)
            seconds, _ = await timed(lambda: repository.vector(query))
        return seconds

    async with http_floor(sample, runtime.settings.database_url, vectors) as floor_url:

        def over_http(url: str) -> Callable[[str, Any], Awaitable[float]]:
            async def post(text: str, _: Any) -> float:
                return await timed_post(client, url, bodies[text])

            return post

        contenders = {
            "SQL alone": sql_alone,
            "HTTP floor, no database": over_http(f"{floor_url}/floor/static/{COLLECTION}/search"),
            "FastAPI + SQLAlchemy floor": over_http(
                f"{floor_url}/floor/database/{COLLECTION}/search"
            ),
            "ragstore route": over_http(base_url + route),
        }
        names = list(contenders)
        for name in names:  # every page the searches touch is read once, before any timing
            for text, vector in questions:
                await contenders[name](text, vector)
        seconds: dict[str, list[float]] = {name: [] for name in names}
        for repetition in range(OVERHEAD_REPETITIONS):
            turn = repetition % len(names)
            for name in names[turn:] + names[:turn]:
                for text, vector in questions:
                    seconds[name].append(await contenders[name](text, vector))
    overhead = {name: stats(values) for name, values in seconds.items()}
    sql_p50 = overhead["SQL alone"][0]
    for name, (p50, p95, p99) in overhead.items():
        console.print(
            f"{name:28s} p50 {p50:6.2f} ms  p95 {p95:6.2f}  p99 {p99:6.2f}  "
            f"adds {(p50 / sql_p50 - 1) * 100:+5.0f}% over the SQL alone"
        )
    return overhead


def report_sweep(name: str, sweep: list[list[Any]], inputs: dict[str, Any]) -> None:
    largest = [row for row in sweep if row[0] == inputs["sizes"][-1] and row[4] == "none"]
    best = max(largest, key=lambda row: row[10])
    report(
        f"{name}_ef_search",
        f"Vector search SQL by HNSW build and hnsw.ef_search (k={K}, {inputs['queries']} "
        f"queries): best recall@10 {best[10]:.3f} (m/ef_construction {best[1]}, "
        f"ef_search {best[3]}, {best[5]:.1f} ms p50)",
        [
            "chunks",
            "m/ef_construction",
            "build s",
            "ef_search",
            "filter",
            "SQL p50 ms",
            "SQL p95",
            "SQL p99",
            "exact p50 ms",
            "HNSW speedup",
            "recall@10",
            "worst question",
            "source recall",
            "distance ratio",
        ],
        sweep,
        inputs,
    )
    curves = sorted({(row[0], row[1], row[4]) for row in sweep})
    chart(
        f"{name}_ef_search",
        f"Recall@10 vs latency as hnsw.ef_search grows (k={K})",
        ("SQL p50 milliseconds", "recall@10"),
        {
            f"{size:,} chunks, m/efc {index}{'' if filter_ == 'none' else ', 1% filter'}": (
                [row[5] for row in sweep if (row[0], row[1], row[4]) == (size, index, filter_)],
                [row[10] for row in sweep if (row[0], row[1], row[4]) == (size, index, filter_)],
            )
            for size, index, filter_ in curves
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,30000,100000", help="comma-separated, growing")
    parser.add_argument("--queries", type=int, default=100, help="Cranfield questions asked")
    parser.add_argument("--texts", type=int, default=1400, help="base abstracts to embed")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated search modes")
    parser.add_argument("--ef-search", default="", help="comma-separated hnsw.ef_search to sweep")
    parser.add_argument(
        "--index", default="16:64", help="HNSW builds to sweep, m:ef_construction,..."
    )
    parser.add_argument("--name", default="search_scale", help="results file name")
    parser.add_argument(
        "--small", type=int, default=1000, help="chunks of the small collection (0: none)"
    )
    parser.add_argument(
        "--dimensions",
        type=int,
        default=LOCAL_DIMENSIONS,
        help="384: the local model's vectors; any other: the fake upstream's dense ones",
    )
    arguments = parser.parse_args()
    sizes = sorted(int(size) for size in arguments.sizes.split(","))
    modes = [mode for mode in MODES if mode in arguments.modes.split(",")]
    if "vector" not in modes:
        parser.error("--modes must include vector (recall is measured on it)")
    ef_values = [int(ef) for ef in arguments.ef_search.split(",") if ef]
    indexes = [
        (int(m), int(ef_construction))
        for m, ef_construction in (pair.split(":") for pair in arguments.index.split(","))
    ]
    if indexes[0] != DEFAULT_INDEX:
        parser.error("--index must start with 16:64, the migration's index")
    asyncio.run(
        run(
            sizes,
            arguments.texts,
            arguments.queries,
            modes,
            ef_values,
            indexes,
            arguments.name,
            arguments.small,
            arguments.dimensions,
        )
    )


if __name__ == "__main__":
    main()
