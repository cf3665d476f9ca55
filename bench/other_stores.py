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
(ragstore's settings). The libraries' out-of-the-box setup, with no vector
index at all, is measured as well. ragstore also keeps its keyword index
(a generated tsvector with GIN) up to date; the competitors here do not.

Search: the same distinct query texts, each sent once to each store,
alternating; every latency includes embedding the query through the same
upstream (ragstore's query-vector cache is off, so it embeds every query
too). ragstore is called over HTTP, the competitors in-process.

    python -m bench.other_stores [--chunks 3000] [--repeat 3] [--queries 100]
"""

import argparse
import asyncio
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.embedded import EmbeddedPostgres
from bench.common import database, fake_upstream, median, percentile, report, served, timer
from bench.ingest_vs_original import WORDS, embedding_calls, paragraphs, ragstore_chunks
from bench.load import UPSTREAM_EMBEDDINGS, upstream_environment

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
DIMENSIONS = int(UPSTREAM_EMBEDDINGS["embedding_dimensions"])
# ragstore's index (the migration's defaults) and its RAGSTORE_HNSW_EF_SEARCH.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 16, 64, 100
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

    async def close(self) -> None: ...


def label(store: Store) -> str:
    return f"{store.name} / {store.index}"


def environment(upstream_url: str) -> dict[str, str]:
    # Every query embedded, as the competitors do (no query is repeated anyway).
    return upstream_environment(upstream_url, RAGSTORE_QUERY_CACHE_SIZE="0")


@dataclass
class Ragstore:
    """ragstore served by `ragstore serve` in its own process, called over HTTP."""

    client: httpx.AsyncClient
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

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class LangChain:
    """langchain-postgres' PGVectorStore (v2: its own engine, psycopg 3, one table per store)."""

    url: str
    upstream_url: str
    hnsw: bool
    name: str = "langchain-postgres PGVectorStore"
    tables: list[str] = field(default_factory=list)
    store: Any = None

    def __post_init__(self) -> None:
        self.engine = PGEngine.from_connection_string(self.url)

    @property
    def index(self) -> str:
        return "HNSW (same as ragstore)" if self.hnsw else "none (library default)"

    async def prepare(self, run: int) -> None:
        table = f"langchain_{'hnsw' if self.hnsw else 'plain'}_{run}"
        await self.engine.ainit_vectorstore_table(table_name=table, vector_size=DIMENSIONS)
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
                dimensions=DIMENSIONS,
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

    async def close(self) -> None:
        await self.engine.close()


@dataclass
class LlamaIndex:
    """llama-index's PGVectorStore behind a VectorStoreIndex (SQLAlchemy: psycopg2 and asyncpg)."""

    urls: tuple[str, str]
    upstream_url: str
    hnsw: bool
    name: str = "llama-index PGVectorStore"
    stores: list[Any] = field(default_factory=list)
    vector_index: Any = None

    @property
    def index(self) -> str:
        return "HNSW (same as ragstore)" if self.hnsw else "none (library default)"

    async def prepare(self, run: int) -> None:
        store = LlamaPGVectorStore.from_params(
            connection_string=self.urls[0],
            async_connection_string=self.urls[1],
            table_name=f"{'hnsw' if self.hnsw else 'plain'}_{run}",
            embed_dim=DIMENSIONS,
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
                model=MODEL, dimensions=DIMENSIONS, api_base=self.upstream_url, api_key="bench"
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

    async def close(self) -> None:
        for store in self.stores:
            await store.close()


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


async def vacuum(url: str) -> None:
    """VACUUM ANALYZE a database: deleted runs out of the indexes, fresh planner statistics."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text("VACUUM ANALYZE"))
    await engine.dispose()


def competitor_urls(server: EmbeddedPostgres, name: str) -> tuple[str, str]:
    """(sync psycopg2, async asyncpg) URLs of a new database in the same server."""
    server.psql(f"CREATE DATABASE {name};")
    asyncpg_url = server.url(name)
    return asyncpg_url.replace("+asyncpg", "+psycopg2"), asyncpg_url


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
    chunks: int, repeat: int, query_count: int, latency: float, search_latency: float
) -> None:
    ks = (4, 10)
    with (
        tempfile.TemporaryDirectory() as folder,
        fake_upstream(latency) as upstream,
        fake_upstream(search_latency) as search_upstream,
        database(**UPSTREAM_EMBEDDINGS) as (server, settings),
    ):
        assert settings.database_url
        langchain_url = competitor_urls(server, "langchain")[1].replace("+asyncpg", "+psycopg")
        llama_urls = competitor_urls(server, "llamaindex")
        competitors: list[Store] = [
            LangChain(langchain_url, upstream.url, hnsw=True),
            LlamaIndex(llama_urls, upstream.url, hnsw=True),
            LangChain(langchain_url, upstream.url, hnsw=False),
            LlamaIndex(llama_urls, upstream.url, hnsw=False),
        ]
        async with served(settings, **environment(upstream.url)) as base_url:
            ragstore = Ragstore(httpx.AsyncClient(base_url=base_url, timeout=600))
            stores = [ragstore, *competitors]
            ingested = await ingest_runs(stores, Path(folder), chunks, repeat, upstream.url)
            await ragstore.client.aclose()
        for url in (settings.database_url, server.url("langchain"), llama_urls[1]):
            await vacuum(url)

        # The same data, now searched with query embeddings from the search upstream.
        async with served(settings, **environment(search_upstream.url)) as base_url:
            ragstore.client = httpx.AsyncClient(base_url=base_url, timeout=60)
            hybrid = Ragstore(ragstore.client, mode="hybrid", collections=ragstore.collections)
            for store in stores:
                await store.use_upstream(search_upstream.url)
            latencies = await search_runs([*stores, hybrid], queries(query_count, seed=11), ks)
            for store in stores:
                await store.close()

    rows = table(stores, hybrid, ingested, latencies, ks)
    slowest = max(row[5] for row in rows[1:-1])
    fastest = min(row[5] for row in rows[1:-1])
    report(
        "other_stores",
        f"{rows[0][2]:,} chunks, {latency * 1000:.0f} ms per embedding call, median of "
        f"{repeat} ingests, {query_count} searches per k: the others take "
        f"{fastest:.1f}x to {slowest:.1f}x ragstore's ingest time",
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
            "hnsw": {
                "m": HNSW_M,
                "ef_construction": HNSW_EF_CONSTRUCTION,
                "ef_search": HNSW_EF_SEARCH,
            },
            "ingest": ingested,
            "search_ms": {
                name: {str(k): values for k, values in by_k.items()}
                for name, by_k in latencies.items()
            },
        },
    )


def table(
    stores: Sequence[Store],
    hybrid: Store,
    ingested: dict[str, dict[str, list[float]]],
    latencies: dict[str, dict[int, list[float]]],
    ks: Sequence[int],
) -> list[list[Any]]:
    """One row per store: ingest medians and search percentiles, with ratios to ragstore's."""
    ragstore_seconds = median(ingested[label(stores[0])]["seconds"])
    ragstore_p50 = {k: percentile(latencies[label(stores[0])][k], 0.5) for k in ks}
    rows: list[list[Any]] = []
    for store in [*stores, hybrid]:
        ingest = ingested.get(label(store))
        if ingest is None:  # the hybrid row: searched, not ingested
            row: list[Any] = [store.name, store.index, "", "", "", ""]
        else:
            seconds = median(ingest["seconds"])
            calls = int(median(ingest["calls"]))
            row = [store.name, store.index, int(median(ingest["stored"])), calls, seconds]
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
    arguments = parser.parse_args()
    asyncio.run(
        run(
            arguments.chunks,
            arguments.repeat,
            arguments.queries,
            arguments.latency,
            arguments.search_latency,
        )
    )


if __name__ == "__main__":
    main()
