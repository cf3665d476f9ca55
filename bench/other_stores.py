"""Benchmark 3: ragstore against the pgvector stores of langchain and llama-index.

Same documents, same embedding server (the fake OpenAI upstream, in its own
process), same PostgreSQL server (one database per store). ragstore ingests the
text file end to end through its HTTP upload route (parse, chunk, embed,
write); the competitors are handed ragstore's chunks ready-made and only embed
and write them, each through its library's own OpenAI embeddings class with
the library's default batching. Creating the empty table or collection is not
timed, for any store.

Indexes: while writing and searching, every store has the same vector index:
HNSW, cosine, m=16, ef_construction=64, searched with ef_search=100
(ragstore's settings) at 384 dimensions. The libraries' out-of-the-box setup, with no vector
index at all, is measured as well. ragstore also keeps its keyword index
(a generated tsvector with GIN) up to date; the competitors here do not.

Search: the same distinct query texts, each sent once to each store,
alternating; every latency includes embedding the query through the same
upstream (ragstore's query-vector cache is off, so it embeds every query
too). ragstore is called over HTTP, the competitors in-process.

At `--dimensions 1536` (OpenAI's default model) the upstream answers with
dense vectors (sums of fixed random word vectors; at 384, as first measured,
with hashed words). The competitors then keep a full-precision HNSW index,
their libraries' only kind; ragstore keeps its own, on binary-quantized
vectors with an exact re-rank (migration 0011), so the indexes differ there.

    python -m bench.other_stores [--chunks 3000] [--repeat 3] [--queries 100]
        [--dimensions 384]
"""

import argparse
import asyncio
import json
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
import numpy as np
import openai
from pgvector.asyncpg import register_vector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.db.embedded import EmbeddedPostgres
from app.db.types import quantizes_vectors
from app.python_api import VectorDatabase
from bench.common import database, median, percentile, report, served, timer
from bench.corpus import WORDS, paragraphs, ragstore_chunks
from bench.upstream import (
    UPSTREAM_EMBEDDINGS,
    embedding_calls,
    fake_upstream,
    upstream_environment,
)

try:
    from langchain_openai import OpenAIEmbeddings
    from langchain_postgres import PGEngine, PGVectorStore
    from langchain_postgres.v2.indexes import HNSWIndex, HNSWQueryOptions
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.vector_stores.postgres import PGVectorStore as LlamaPGVectorStore
except ImportError as missing:  # pragma: no cover - a clear message instead of a traceback
    raise SystemExit(
        f"{missing.name} is not installed: the competitors are in the bench extra "
        "(pip install -e '.[dev,bench]')"
    ) from missing

MODEL = str(UPSTREAM_EMBEDDINGS["embedding_model"])
# ragstore's index (the migration's defaults) and its RAGSTORE_HNSW_EF_SEARCH.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 16, 64, 100
SAME_HNSW = "HNSW (ragstore's m, ef_construction, ef_search)"
CHUNK_SIZE, CHUNK_OVERLAP = 500, 50


class Store(Protocol):
    name: str
    index: str

    async def prepare(self, run: int) -> None:
        """An empty table (or collection) for this run, untimed."""

    async def ingest(self, path: Path, chunks: list[str]) -> int:
        """Embed and store the chunks (ragstore: upload the file); the number stored."""

    async def search(self, query: str, k: int) -> int:
        """The k nearest chunks to the query text; how many came back."""

    async def keep_only_last_run(self) -> None:
        """Drop the earlier runs' data, so every store searches the same number of rows."""

    async def use_upstream(self, url: str) -> None:
        """Embed through another upstream from now on (the search phase's)."""

    def scanned(self) -> tuple[str, str, str]:
        """Database URL, table and WHERE clause of its vector search (for the query plan)."""

    async def close(self) -> None: ...


def label(store: Store) -> str:
    return f"{store.name} / {store.index}"


def ragstore_index(dimensions: int) -> str:
    """ragstore's indexes: from 1,024 dimensions the HNSW graph holds binary-quantized
    vectors and a search re-ranks its candidates by the full ones (migration 0011)."""
    if quantizes_vectors(dimensions):
        return "HNSW on binary-quantized vectors + GIN (its schema)"
    return "HNSW + GIN (its schema)"


def environment(upstream_url: str, dimensions: int) -> dict[str, str]:
    # Every query embedded, as the competitors do (no query is repeated anyway).
    return upstream_environment(
        upstream_url,
        RAGSTORE_QUERY_CACHE_SIZE="0",
        RAGSTORE_EMBEDDING_DIMENSIONS=str(dimensions),
    )


@dataclass
class Ragstore:
    """ragstore served by `ragstore serve` in its own process, called over HTTP."""

    client: httpx.AsyncClient
    database_url: str
    mode: str = "vector"
    index: str = "HNSW + GIN (its schema)"
    collections: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "ragstore" if self.mode == "vector" else f"ragstore ({self.mode} search)"

    async def prepare(self, run: int) -> None:
        created = await self.client.post("/api/collections", json={"name": f"bench run {run}"})
        created.raise_for_status()
        self.collections.append(created.json()["id"])

    async def ingest(self, path: Path, chunks: list[str]) -> int:
        response = await self.client.post(
            f"/api/collections/{self.collections[-1]}/documents",
            files={"file": (path.name, await asyncio.to_thread(path.read_bytes), "text/plain")},
            data={"chunk_size": str(CHUNK_SIZE), "chunk_overlap": str(CHUNK_OVERLAP)},
        )
        response.raise_for_status()
        return int(response.json()["chunk_count"])

    async def search(self, query: str, k: int) -> int:
        response = await self.client.post(
            f"/api/collections/{self.collections[-1]}/search",
            json={"query": query, "k": k, "mode": self.mode},
        )
        response.raise_for_status()
        return len(response.json()["results"])

    async def keep_only_last_run(self) -> None:
        for collection in self.collections[:-1]:
            (await self.client.delete(f"/api/collections/{collection}")).raise_for_status()
        del self.collections[:-1]

    async def use_upstream(self, url: str) -> None:
        """The upstream is the server's setting: the caller restarts it and swaps the client."""

    def scanned(self) -> tuple[str, str, str]:
        return (
            self.database_url,
            "chunks",
            f"WHERE collection_id = '{self.collections[-1]}' AND in_graph",
        )

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class LangChain:
    """langchain-postgres' PGVectorStore (v2: its own engine, psycopg 3, one table per store)."""

    url: str
    upstream_url: str
    hnsw: bool
    dimensions: int
    name: str = "langchain-postgres PGVectorStore"
    tables: list[str] = field(default_factory=list)
    store: Any = None

    def __post_init__(self) -> None:
        self.engine = PGEngine.from_connection_string(self.url)

    @property
    def index(self) -> str:
        return SAME_HNSW if self.hnsw else "none (library default)"

    async def prepare(self, run: int) -> None:
        table = f"langchain_{'hnsw' if self.hnsw else 'plain'}_{run}"
        await self.engine.ainit_vectorstore_table(table_name=table, vector_size=self.dimensions)
        self.tables.append(table)
        await self.open_store()
        if self.hnsw:
            await self.store.aapply_vector_index(
                HNSWIndex(m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
            )

    async def open_store(self) -> None:
        self.store = await PGVectorStore.create(
            self.engine,
            embedding_service=OpenAIEmbeddings(
                model=MODEL,
                dimensions=self.dimensions,
                base_url=self.upstream_url,
                api_key="bench",  # type: ignore[arg-type]
                # Otherwise it downloads a tiktoken file to count tokens.
                check_embedding_ctx_length=False,
            ),
            table_name=self.tables[-1],
            index_query_options=HNSWQueryOptions(ef_search=HNSW_EF_SEARCH) if self.hnsw else None,
        )

    async def ingest(self, path: Path, chunks: list[str]) -> int:
        metadatas = [{"filename": path.name, "chunk_index": n} for n in range(len(chunks))]
        return len(await self.store.aadd_texts(chunks, metadatas=metadatas))

    async def search(self, query: str, k: int) -> int:
        return len(await self.store.asimilarity_search(query, k=k))

    async def keep_only_last_run(self) -> None:
        for table in self.tables[:-1]:
            await self.engine.adrop_table(table)
        del self.tables[:-1]

    async def use_upstream(self, url: str) -> None:
        self.upstream_url = url
        await self.open_store()

    def scanned(self) -> tuple[str, str, str]:
        return self.url, f'"{self.tables[-1]}"', ""

    async def close(self) -> None:
        await self.engine.close()


@dataclass
class LlamaIndex:
    """llama-index's PGVectorStore behind a VectorStoreIndex (SQLAlchemy: psycopg2 and asyncpg)."""

    urls: tuple[str, str]
    upstream_url: str
    hnsw: bool
    dimensions: int
    name: str = "llama-index PGVectorStore"
    stores: list[Any] = field(default_factory=list)
    vector_index: Any = None

    @property
    def index(self) -> str:
        return SAME_HNSW if self.hnsw else "none (library default)"

    async def prepare(self, run: int) -> None:
        store = LlamaPGVectorStore.from_params(
            connection_string=self.urls[0],
            async_connection_string=self.urls[1],
            table_name=f"{'hnsw' if self.hnsw else 'plain'}_{run}",
            embed_dim=self.dimensions,
            hnsw_kwargs={
                "hnsw_m": HNSW_M,
                "hnsw_ef_construction": HNSW_EF_CONSTRUCTION,
                "hnsw_ef_search": HNSW_EF_SEARCH,
                "hnsw_dist_method": "vector_cosine_ops",
            }
            if self.hnsw
            else None,
        )
        # The table (and index) are otherwise created by the first insert: untimed here.
        await asyncio.to_thread(store._initialize)
        self.stores.append(store)
        self.open_index()

    def open_index(self) -> None:
        self.vector_index = VectorStoreIndex(
            nodes=[],
            storage_context=StorageContext.from_defaults(vector_store=self.stores[-1]),
            embed_model=OpenAIEmbedding(
                model=MODEL,
                dimensions=self.dimensions,
                api_base=self.upstream_url,
                api_key="bench",
            ),
        )

    async def ingest(self, path: Path, chunks: list[str]) -> int:
        nodes = [
            TextNode(text=chunk, metadata={"filename": path.name, "chunk_index": n})
            for n, chunk in enumerate(chunks)
        ]
        await self.vector_index.ainsert_nodes(nodes)
        return len(nodes)

    async def search(self, query: str, k: int) -> int:
        retriever = self.vector_index.as_retriever(similarity_top_k=k)
        return len(await retriever.aretrieve(query))

    async def keep_only_last_run(self) -> None:
        for store in self.stores[:-1]:
            await store.aclear()
            await store.close()
        del self.stores[:-1]

    async def use_upstream(self, url: str) -> None:
        self.upstream_url = url
        self.open_index()

    def scanned(self) -> tuple[str, str, str]:
        return self.urls[1], f"data_{self.stores[-1].table_name}", ""

    async def close(self) -> None:
        for store in self.stores:
            await store.close()


@dataclass
class Floor:
    """Not a store: the least any store must do. All embedding calls at once (2,048 inputs
    each), one binary COPY into a bare table; a search is the query's embedding and one
    SELECT. What a real store adds (documents, metadata, keyword index) is above this."""

    url: str
    upstream_url: str
    hnsw: bool
    dimensions: int
    name: str = "floor: bare asyncpg COPY / SELECT"
    tables: list[str] = field(default_factory=list)
    connection: Any = None

    def __post_init__(self) -> None:
        self.embeddings = openai.AsyncOpenAI(base_url=self.upstream_url, api_key="bench")

    @property
    def index(self) -> str:
        return SAME_HNSW if self.hnsw else "none"

    async def prepare(self, run: int) -> None:
        if self.connection is None:
            self.connection = await asyncpg.connect(self.url)
            await self.connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await register_vector(self.connection)
            await self.connection.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")
        table = f"floor_{'hnsw' if self.hnsw else 'plain'}_{run}"
        await self.connection.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, text text NOT NULL, "
            f"embedding vector({self.dimensions}) NOT NULL)"
        )
        if self.hnsw:
            await self.connection.execute(
                f"CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops) "
                f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
            )
        self.tables.append(table)

    async def embed(self, texts: list[str]) -> list[Any]:
        batches = [texts[start : start + 2048] for start in range(0, len(texts), 2048)]
        responses = await asyncio.gather(
            *(
                self.embeddings.embeddings.create(
                    model=MODEL, input=batch, dimensions=self.dimensions
                )
                for batch in batches
            )
        )
        return [np.array(item.embedding, dtype=np.float32) for r in responses for item in r.data]

    async def ingest(self, path: Path, chunks: list[str]) -> int:
        vectors = await self.embed(chunks)
        await self.connection.copy_records_to_table(
            self.tables[-1],
            records=[(n, *row) for n, row in enumerate(zip(chunks, vectors, strict=True))],
            columns=["id", "text", "embedding"],
        )
        return len(chunks)

    async def search(self, query: str, k: int) -> int:
        vector = (await self.embed([query]))[0]
        rows = await self.connection.fetch(
            f"SELECT id, text FROM {self.tables[-1]} ORDER BY embedding <=> $1 LIMIT $2",
            vector,
            k,
        )
        return len(rows)

    async def keep_only_last_run(self) -> None:
        for table in self.tables[:-1]:
            await self.connection.execute(f"DROP TABLE {table}")
        del self.tables[:-1]

    async def use_upstream(self, url: str) -> None:
        await self.embeddings.close()
        self.upstream_url = url
        self.embeddings = openai.AsyncOpenAI(base_url=url, api_key="bench")

    def scanned(self) -> tuple[str, str, str]:
        return self.url, self.tables[-1], ""

    async def close(self) -> None:
        await self.embeddings.close()
        await self.connection.close()


@dataclass
class RagstoreLibrary:
    """ragstore's Python API in this process, like the competitors (search only: the
    chunks are the ones uploaded over HTTP)."""

    settings: Settings
    collection: str
    name: str = "ragstore Python API (in-process)"
    index: str = "HNSW + GIN (its schema)"

    def __post_init__(self) -> None:
        self.database = VectorDatabase(self.collection, settings=self.settings)

    async def prepare(self, run: int) -> None:
        raise NotImplementedError("search only")

    async def ingest(self, path: Path, chunks: list[str]) -> int:
        raise NotImplementedError("search only")

    async def search(self, query: str, k: int) -> int:
        return len(await self.database.asearch_by_text(query, k))

    async def keep_only_last_run(self) -> None:
        """Nothing of its own."""

    async def use_upstream(self, url: str) -> None:
        """Set in its settings."""

    def scanned(self) -> tuple[str, str, str]:
        raise NotImplementedError("the same SQL as the HTTP route")

    async def close(self) -> None:
        await self.database.aclose()


def queries(count: int, seed: int) -> list[str]:
    """Distinct questions in the documents' vocabulary: no store ever sees one twice."""
    generator = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        found[" ".join(generator.sample(WORDS, 4))] = None
    return list(found)


def documents(folder: Path, chunks: int, run: int) -> Path:
    """A different text per run, so ragstore's embedding cache never answers."""
    path = Path(folder) / f"reports-{run}.txt"
    path.write_text("\n\n".join(f"Run {run}. {p}" for p in paragraphs(chunks)))
    return path


async def scan_costs(url: str, table: str, where: str) -> dict[str, Any]:
    """How PostgreSQL runs a store's k=10 vector query: the scan, pages touched, time and
    the table's TOAST size (vectors moved out of line cost extra page reads each)."""
    connection = await asyncpg.connect(url.replace("+asyncpg", "").replace("+psycopg", ""))
    try:
        await register_vector(connection)
        await connection.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")
        vector = await connection.fetchval(f"SELECT embedding FROM {table} LIMIT 1")
        explained = await connection.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
            f"SELECT * FROM {table} {where} ORDER BY embedding <=> $1 LIMIT 10",
            vector,
        )
        toast = await connection.fetchval(
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = $1::regclass",
            table.strip('"'),
        )
    finally:
        await connection.close()
    plan = json.loads(explained)[0]
    node = plan["Plan"]
    while "Scan" not in node["Node Type"] and node.get("Plans"):
        node = node["Plans"][0]
    return {
        "scan": " ".join(filter(None, [node["Node Type"], node.get("Index Name")])),
        "pages": plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"],
        "execution_ms": plan["Execution Time"],
        "toast_bytes": toast,
    }


async def vacuum(url: str) -> None:
    """VACUUM ANALYZE a database: deleted runs out of the indexes, fresh planner statistics."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text("VACUUM ANALYZE"))
    await engine.dispose()


async def ingest_runs(
    stores: Sequence[Store], folder: Path, chunks: int, repeat: int, upstream_url: str
) -> dict[str, dict[str, list[float]]]:
    """Seconds, chunks stored and embedding calls of each store's ingests, in rotating order."""
    measured = {label(store): {"seconds": [], "stored": [], "calls": []} for store in stores}
    for run in range(repeat):
        path = documents(folder, chunks, run)
        texts = ragstore_chunks(path)
        for store in rotated(stores, run):
            await store.prepare(run)
            before = embedding_calls(upstream_url)
            with timer() as elapsed:
                stored = await store.ingest(path, texts)
            row: dict[str, list[float]] = measured[label(store)]
            row["seconds"].append(elapsed[0])
            row["stored"].append(stored)
            row["calls"].append(embedding_calls(upstream_url) - before)
    for store in stores:
        await store.keep_only_last_run()
    return measured


async def search_runs(
    stores: Sequence[Store], texts: list[str], ks: Sequence[int]
) -> dict[str, dict[int, list[float]]]:
    """Milliseconds per search, every store asked every query once, in rotating order."""
    for store in stores:  # warm connections and statement caches
        for query in ("boundary layer", "shock wave"):
            await store.search(query, max(ks))
    latencies: dict[str, dict[int, list[float]]] = {
        label(store): {k: [] for k in ks} for store in stores
    }
    for k in ks:
        for n, query in enumerate(texts):
            for store in rotated(stores, n):
                with timer() as elapsed:
                    found = await store.search(f"{query} (k={k})", k)
                assert found == k, f"{store.name} returned {found} of {k}"
                latencies[label(store)][k].append(elapsed[0] * 1000)
    return latencies


def rotated(stores: Sequence[Store], turn: int) -> list[Store]:
    """Each store goes first in turn, so none always runs on a warmer (or busier) machine."""
    shift = turn % len(stores)
    return [*stores[shift:], *stores[:shift]]


async def run(
    chunks: int,
    repeat: int,
    query_count: int,
    call_latencies: tuple[float, float],
    dimensions: int,
) -> None:
    latency, search_latency = call_latencies  # while ingesting, while searching
    ks = (4, 10)
    embeddings = {**UPSTREAM_EMBEDDINGS, "embedding_dimensions": dimensions}
    dense = dimensions != int(UPSTREAM_EMBEDDINGS["embedding_dimensions"])
    with (
        tempfile.TemporaryDirectory() as folder,
        fake_upstream(latency, dense=dense) as upstream,
        fake_upstream(search_latency, dense=dense) as search_upstream,
        database(**embeddings) as (server, settings),
    ):
        assert settings.database_url
        databases = {name: new_database(server, name) for name in ("langchain", "llama", "floor")}
        llama_urls = (databases["llama"].replace("+asyncpg", "+psycopg2"), databases["llama"])
        langchain_url = databases["langchain"].replace("+asyncpg", "+psycopg")
        floor_url = databases["floor"].replace("+asyncpg", "")
        others: list[Store] = [
            LangChain(langchain_url, upstream.url, hnsw=True, dimensions=dimensions),
            LlamaIndex(llama_urls, upstream.url, hnsw=True, dimensions=dimensions),
            LangChain(langchain_url, upstream.url, hnsw=False, dimensions=dimensions),
            LlamaIndex(llama_urls, upstream.url, hnsw=False, dimensions=dimensions),
            Floor(floor_url, upstream.url, hnsw=True, dimensions=dimensions),
            Floor(floor_url, upstream.url, hnsw=False, dimensions=dimensions),
        ]
        async with served(settings, **environment(upstream.url, dimensions)) as base_url:
            client = httpx.AsyncClient(base_url=base_url, timeout=600)
            ragstore = Ragstore(client, settings.database_url, index=ragstore_index(dimensions))
            stores = [ragstore, *others]
            ingested = await ingest_runs(stores, Path(folder), chunks, repeat, upstream.url)
            await ragstore.client.aclose()
        for url in (settings.database_url, *databases.values()):
            await vacuum(url)
        plans = {label(store): await scan_costs(*store.scanned()) for store in stores}

        # The same data, now searched with query embeddings from the search upstream.
        async with served(settings, **environment(search_upstream.url, dimensions)) as base_url:
            ragstore.client = httpx.AsyncClient(base_url=base_url, timeout=60)
            in_process = RagstoreLibrary(
                Settings(  # type: ignore[call-arg]
                    _env_file=None,
                    database_url=settings.database_url,
                    migrate_on_start=False,
                    worker_in_process=False,
                    openai_base_url=search_upstream.url,
                    openai_api_key="bench",
                    query_cache_size=0,
                    **embeddings,
                ),
                ragstore.collections[-1],
                index=ragstore.index,
            )
            hybrid = Ragstore(
                ragstore.client,
                settings.database_url,
                "hybrid",
                index=ragstore.index,
                collections=ragstore.collections,
            )
            searched = [ragstore, in_process, hybrid, *others]
            for store in searched:
                await store.use_upstream(search_upstream.url)
            latencies = await search_runs(searched, queries(query_count, seed=11), ks)
            for store in [ragstore, in_process, *others]:  # the hybrid row shares ragstore's client
                await store.close()

    rows = table(searched, ingested, latencies, ks)
    slowest = {row[0]: row[5] for row in rows if row[1] == SAME_HNSW}
    report(
        "other_stores" if not dense else f"other_stores_{dimensions}",
        f"{rows[0][2]:,} chunks, {latency * 1000:.0f} ms per embedding call, median of "
        f"{repeat} ingests, {query_count} searches per k. Ingest time vs ragstore's, same "
        "HNSW index: " + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in slowest.items()),
        [
            "store",
            "vector index",
            "chunks",
            "embedding calls",
            "ingest s",
            "ingest time / ragstore's",
            "k=4 p50 ms",
            "k=4 p95 ms",
            "k=10 p50 ms",
            "k=10 p95 ms",
            "search p50 / ragstore's",
        ],
        rows,
        {
            "chunks": chunks,
            "repeat": repeat,
            "queries_per_k": query_count,
            "ingest_latency_seconds": latency,
            "search_latency_seconds": search_latency,
            "dimensions": dimensions,
            "vectors": "dense, sums of word vectors" if dense else "hashed words",
            "hnsw": {
                "m": HNSW_M,
                "ef_construction": HNSW_EF_CONSTRUCTION,
                "ef_search": HNSW_EF_SEARCH,
            },
            "ragstore_ingest": "HTTP upload route, synchronous (parse, chunk, embed, write)",
            "competitors_ingest": "ragstore's chunks given ready-made; embed and write only",
            "search": "query embedding included for every store; ragstore over HTTP",
            "vector_query_plans": plans,
            "ingest": ingested,
            "search_ms": {
                name: {str(k): values for k, values in by_k.items()}
                for name, by_k in latencies.items()
            },
        },
    )
    print_plans(plans)


def print_plans(plans: dict[str, dict[str, Any]]) -> None:
    print("How PostgreSQL runs each store's k=10 vector query (after VACUUM ANALYZE):")
    for name, plan in plans.items():
        print(
            f"  {name}: {plan['scan']}, {plan['pages']:,} pages, {plan['execution_ms']:.2f} ms, "
            f"TOAST {(plan['toast_bytes'] or 0) / 1e6:.1f} MB"
        )


def new_database(server: EmbeddedPostgres, name: str) -> str:
    server.psql(f"CREATE DATABASE {name};")
    return server.url(name)


def table(
    stores: Sequence[Store],
    ingested: dict[str, dict[str, list[float]]],
    latencies: dict[str, dict[int, list[float]]],
    ks: Sequence[int],
) -> list[list[Any]]:
    """One row per store: ingest medians and search percentiles, with ratios to ragstore's
    (the first store). Stores that only searched have no ingest numbers."""
    ragstore_seconds = median(ingested[label(stores[0])]["seconds"])
    ragstore_p50 = {k: percentile(latencies[label(stores[0])][k], 0.5) for k in ks}
    rows: list[list[Any]] = []
    for store in stores:
        ingest = ingested.get(label(store))
        row: list[Any] = [store.name, store.index, "", "", "", ""]
        if ingest is not None:
            seconds = median(ingest["seconds"])
            row[2:] = [int(median(ingest["stored"])), int(median(ingest["calls"])), seconds]
            row.append(seconds / ragstore_seconds)
        search = latencies[label(store)]
        for k in ks:
            row += [percentile(search[k], 0.5), percentile(search[k], 0.95)]
        row.append(median([percentile(search[k], 0.5) / ragstore_p50[k] for k in ks]))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", type=int, default=100, help="distinct queries per k")
    parser.add_argument("--latency", type=float, default=0.1, help="embedding call latency")
    parser.add_argument(
        "--search-latency",
        type=float,
        default=0.0,
        help="embedding latency while searching (it adds the same to every store)",
    )
    parser.add_argument(
        "--dimensions", type=int, default=384, help="embedding size (dense vectors if not 384)"
    )
    arguments = parser.parse_args()
    asyncio.run(
        run(
            arguments.chunks,
            arguments.repeat,
            arguments.queries,
            (arguments.latency, arguments.search_latency),
            arguments.dimensions,
        )
    )


if __name__ == "__main__":
    main()
