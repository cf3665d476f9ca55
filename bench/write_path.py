"""Benchmark 2: ragstore's chunk write vs a bare binary COPY of the same rows.

Where the time goes is shown by loading the same rows into tables that add
one thing at a time: the generated tsvector and its GIN index, the HNSW
index, and finally ragstore's own write (constraints and the BM25 keyword
index's triggers and the metadata GIN index included, and once more with
each of those left out, to show what it costs). The "bare COPY, then build"
rows build the HNSW index after the load instead of maintaining it row by
row: on the full vectors, and from 1,024 dimensions also on their binary
quantization, the index ragstore's migrations make there.

ragstore's write goes into a new collection's table of chunks, as a first
upload does: written without the HNSW graph and without BM25 postings
(migration 0015), which are built over the rows after, either in the same
transaction (a first upload of more than 10,000 chunks) or, once the rows are
committed, in two transactions at once (up to 10,000, the upload answering
before them). And once more into a collection whose (empty) graph is kept up
to date row by row, as every later upload did before migration 0014.

Three more rows time a design ragstore does not have (`staged_first_fill`), to
see what it would give: the rows written by two COPY connections into a table
outside `chunks`, every index and the BM25 postings built after them, and the
table attached as the collection's partition.

Vectors are dense (each text the normalised sum of fixed random vectors of
its words, as the fake upstream answers), at each dimension asked, each in a
new database.

    python -m bench.write_path [--rows 10000] [--repeat 3] [--dimensions 1536,384]
"""

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector
from sqlalchemy import text

from app.core.config import Settings
from app.db.database import Database
from app.db.types import HNSW_INDEX_PREDICATE, hnsw_index_column
from app.document.partitions import ChunkPartitionRepository
from app.document.repository import CHUNK_COLUMNS, CachedChunks, ChunkRepository
from app.ingestion.bulk_load import BulkLoads
from app.ingestion.repository import ProcessedDocumentRepository
from bench.common import database, dimension_list, median, report
from bench.corpus import paragraphs
from bench.seed import copy_chunks, seed_documents
from bench.upstream import UPSTREAM_EMBEDDINGS
from tests.support.fake_openai import dense_embed_texts

COLLECTION = "bench"
VARIANTS = {
    "bare COPY (no indexes)": "",
    "+ generated tsvector and GIN index": "tsvector",
    "+ HNSW index": "tsvector hnsw",
}
BUILD_AFTER = "bare COPY, then build the HNSW index"
BUILD_QUANTIZED_AFTER = "bare COPY, then build the binary-quantized HNSW index"
# From this many dimensions ragstore's HNSW index is on binary_quantize(embedding)
# (migration 0011).
QUANTIZED_FROM = 1024


def rows_for(count: int, document_id: uuid.UUID, dimensions: int) -> list[tuple[Any, ...]]:
    texts = paragraphs(count)
    vectors = dense_embed_texts(texts, dimensions)
    return [
        (
            document_id,
            COLLECTION,
            index,
            text,
            json.dumps({"filename": "bench.txt", "chunk_index": index}),
            vectors[index],
        )
        for index, text in enumerate(texts)
    ]


async def load_variant(
    connection: asyncpg.Connection, features: str, rows: list[Any], dimensions: int
) -> float:
    await connection.execute("DROP TABLE IF EXISTS bench_chunks")
    generated = (
        ", text_search tsvector"
        " GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED"
        if "tsvector" in features
        else ""
    )
    await connection.execute(
        f"""CREATE TABLE bench_chunks (id bigint GENERATED ALWAYS AS IDENTITY, document_id uuid,
            collection_id text, chunk_index int, text text, metadata jsonb,
            embedding vector({dimensions}){generated})"""
    )
    if "tsvector" in features:
        await connection.execute("CREATE INDEX ON bench_chunks USING gin (text_search)")
    if "hnsw" in features:
        await connection.execute(
            "CREATE INDEX ON bench_chunks USING hnsw (embedding vector_cosine_ops)"
        )
    started = time.perf_counter()
    await connection.copy_records_to_table(
        "bench_chunks",
        records=rows,
        columns=("document_id", "collection_id", "chunk_index", "text", "metadata", "embedding"),
    )
    return time.perf_counter() - started


async def build_after_load(
    connection: asyncpg.Connection, rows: list[Any], dimensions: int, quantized: bool
) -> float:
    load = await load_variant(connection, "tsvector", rows, dimensions)
    indexed = (
        f"(binary_quantize(embedding)::bit({dimensions})) bit_hamming_ops"
        if quantized
        else "embedding vector_cosine_ops"
    )
    started = time.perf_counter()
    await connection.execute(f"CREATE INDEX ON bench_chunks USING hnsw ({indexed})")
    return load + time.perf_counter() - started


FIRST_FILL = (
    "ragstore first fill in one transaction (over 10,000 chunks): written, then its HNSW "
    "index and BM25 postings built"
)
FIRST_FILL_DEFERRED = (
    "ragstore first fill (up to 10,000 chunks): written and committed, then its HNSW index "
    "and BM25 postings built at once, on two connections"
)
RAGSTORE = (
    "ragstore chunk write into an indexed collection "
    "(all of the above + constraints + BM25 + metadata index)"
)
WITHOUT_BM25 = "the same without the BM25 index (its triggers disabled)"
WITHOUT_METADATA = "the same without the metadata GIN index"
METADATA_INDEX = "ix_chunks_metadata"


async def ragstore_write(
    database_handle: Database,
    rows: list[Any],
    *,
    keyword_index: bool = True,
    metadata_index: bool = True,
) -> float:
    """ragstore's COPY into the collection's emptied table, its (empty) HNSW index kept up
    to date row by row; with or without the BM25 triggers and the metadata index (dropped
    and rebuilt around the load when left out). A first fill is `ragstore_first_fill`."""
    definition = await emptied(
        database_handle,
        first_fill=False,
        keyword_index=keyword_index,
        metadata_index=metadata_index,
    )
    started = time.perf_counter()
    await copy_chunks(database_handle, rows)
    seconds = time.perf_counter() - started
    await restored(database_handle, metadata_index, definition)
    return seconds


async def ragstore_first_fill(
    database_handle: Database, rows: list[Any], *, memory_mb: int, at_once: bool
) -> float:
    """A new collection's first chunks as ragstore's ingestion writes them
    (`_chunk_transaction`): its BM25 postings deferred (migration 0015), then its HNSW index
    and the postings built, in the same transaction (`at_once` False) or after the commit,
    each in a transaction of its own at the same time, as the deferred builds of
    app/document/index_builds.py run."""
    async with database_handle.session() as session:
        await ChunkPartitionRepository(session).create_if_missing(COLLECTION)
    await emptied(database_handle, first_fill=True, keyword_index=True, metadata_index=True)
    started = time.perf_counter()
    async with database_handle.session() as session:
        partitions = ChunkPartitionRepository(session)
        assert await partitions.claim_first_fill(COLLECTION)
        await partitions.defer_keyword_index(COLLECTION)
        await ChunkRepository(session).copy(rows, in_graph=True)
        if not at_once:
            await partitions.build_vector_index(COLLECTION, memory_mb)
            await partitions.build_keyword_index(COLLECTION)
    if at_once:

        async def vector_index() -> None:
            async with database_handle.session() as session:
                assert await ChunkPartitionRepository(session).build_if_missing(
                    COLLECTION, memory_mb
                )

        async def keyword_index() -> None:
            async with database_handle.session() as session:
                assert await ChunkPartitionRepository(session).build_keyword_index(COLLECTION)

        await asyncio.gather(vector_index(), keyword_index())
    return time.perf_counter() - started


# A design ragstore does not have, timed to see what it would give: see staged_first_fill.
STAGED_ATTACH_FIRST = (
    "evaluated, not ragstore's: written by two COPY connections into a table outside "
    "`chunks`; its other indexes built and the table attached as the collection's "
    "partition, then its HNSW index built, while a third connection builds its BM25 "
    "postings by sorting into tables of their own"
)
STAGED_ANSWER = "the same, until it is attached (searchable; HNSW and postings still building)"
STAGED_INDEX_FIRST = (
    "the same, its HNSW index built beside its other indexes and postings, and then the "
    "table, its BM25 statistics, words and postings published in one transaction "
    "(searchable only then)"
)
RAGSTORE_BULK = (
    "ragstore bulk load (a new collection's first upload of at least bulk_load_min_chunks): "
    "staged from the processed-document cache on two connections, every index built at "
    "once on two, published in its commit"
)
BULK_COLLECTION = "bench-bulk"
BULK_CACHE_KEY = "bench-bulk"
STAGED_COLLECTION = "bench-staged"
STAGED_TABLE = "bench_staged_chunks"
# The indexes every partition of `chunks` has besides its HNSW index (migrations 0008,
# 0012, 0014), built after the rows: the attach adopts them instead of building its own.
STAGED_INDEXES = (
    "CREATE UNIQUE INDEX ON {table} (id, collection_id)",
    "CREATE UNIQUE INDEX ON {table} (document_id, chunk_index, collection_id)",
    "CREATE INDEX ON {table} USING gin (text_search)",
    "CREATE INDEX ON {table} USING gin (metadata jsonb_path_ops)",
    "CREATE INDEX ON {table} (collection_id) WHERE NOT in_graph",
)
# The collection's BM25 words and postings (as keyword_index_build computes them) into
# tables of their own, indexed after. Their ids are taken from the sequences of
# `keyword_terms` and `keyword_collections.postings_key` ({key}) beforehand, so that
# publishing them is an INSERT of the words and an attach of the postings' table.
STAGED_POSTINGS_TABLE = "bench_staged_postings"
STAGED_POSTINGS = (
    "DROP TABLE IF EXISTS bench_staged_terms",
    """CREATE TABLE bench_staged_terms AS
       SELECT nextval(pg_get_serial_sequence('keyword_terms', 'id')) AS id, w.lexeme AS term,
              w.document_frequency
       FROM (SELECT w.lexeme, count(*)::integer AS document_frequency
             FROM {table} c CROSS JOIN LATERAL unnest(c.text_search) w GROUP BY w.lexeme) w""",
    "CREATE UNIQUE INDEX ON bench_staged_terms (term)",
    f"CREATE TABLE {STAGED_POSTINGS_TABLE} (LIKE keyword_postings, CHECK (postings_key = {{key}}))",
    f"""INSERT INTO {STAGED_POSTINGS_TABLE}
       WITH words AS MATERIALIZED (
           SELECT c.id, w.lexeme, greatest(cardinality(w.positions), 1) AS frequency,
                  l.length
           FROM {{table}} c
           CROSS JOIN LATERAL (
               SELECT coalesce(sum(greatest(cardinality(positions), 1)), 0)::integer AS length
               FROM unnest(c.text_search)) l
           CROSS JOIN LATERAL unnest(c.text_search) w
       ),
       average AS (SELECT sum(frequency)::float8 / greatest(count(DISTINCT id), 1) AS length
                   FROM words)
       SELECT w.id, t.id, w.frequency, w.length,
              w.frequency * 2.2 / (w.frequency + 1.2 * (0.25 + 0.75 * w.length
                  / greatest(a.length, 1))), {{key}}
       FROM words w JOIN bench_staged_terms t ON t.term = w.lexeme CROSS JOIN average a""",
    f"ALTER TABLE {STAGED_POSTINGS_TABLE} ADD PRIMARY KEY (chunk_id, term_id) "
    "INCLUDE (term_frequency, chunk_length, postings_key)",
    f"CREATE INDEX ON {STAGED_POSTINGS_TABLE} (term_id, impact DESC) "
    "INCLUDE (term_frequency, chunk_id, chunk_length, postings_key)",
)
# What the collection's statistics row gets when they are published.
STAGED_STATISTICS = f"""
    SELECT (SELECT count(*) FROM {{table}}) AS chunks,
           (SELECT coalesce(sum(length), 0) FROM (SELECT min(chunk_length) AS length
            FROM {STAGED_POSTINGS_TABLE} GROUP BY chunk_id) x) AS length
"""


async def staged_first_fill(
    connections: list[asyncpg.Connection],
    rows: list[Any],
    dimensions: int,
    memory_mb: int,
    attach_first: bool,
) -> tuple[float, float]:
    """A design ragstore does not have, timed to see what it would give (issue 17's
    "partitions built after the load, then attached", with parallel COPY): a new
    collection's first chunks written into a table of their own by two connections at
    once (no trigger, foreign key or index to keep up). Then, at once: a second connection
    builds its other indexes and attaches it; a third builds its BM25 words and postings
    by sorting, with ids taken from their sequences beforehand; the first builds its HNSW
    index, after the attach (`attach_first`, as a small first fill answers now; the
    postings are left unpublished) or before it (then everything is published in one
    transaction once built: the table attached, the statistics row and the words
    inserted, the postings' table attached). (seconds until attached, seconds until
    everything is built).

    Left out, so this is a bound, not a design: each COPY commits on its own, so a crash
    would leave the table for a sweep, and the attach takes SHARE ROW EXCLUSIVE on
    `documents` and `collections` (its foreign keys), waiting for every upload writing
    them."""
    first, second, third = connections
    collection_at = CHUNK_COLUMNS.index("collection_id")
    records = [
        (*row[:collection_at], STAGED_COLLECTION, *row[collection_at + 1 :], True) for row in rows
    ]
    for table, parent in ((STAGED_TABLE, "chunks"), (STAGED_POSTINGS_TABLE, "keyword_postings")):
        if await first.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1))", table
        ):
            await first.execute(f"ALTER TABLE {parent} DETACH PARTITION {table}")
        await first.execute(f"DROP TABLE IF EXISTS {table}")
    for keyword_table in ("keyword_terms", "keyword_collections"):
        await first.execute(
            f"DELETE FROM {keyword_table} WHERE collection_id = $1", STAGED_COLLECTION
        )
    key = await first.fetchval(
        "SELECT nextval(pg_get_serial_sequence('keyword_collections', 'postings_key'))"
    )
    await first.execute(
        f"CREATE TABLE {STAGED_TABLE} (LIKE chunks INCLUDING DEFAULTS INCLUDING GENERATED, "
        f"CHECK (collection_id = '{STAGED_COLLECTION}')) WITH (toast_tuple_target = 8160)"
    )
    columns = (*CHUNK_COLUMNS, "in_graph")
    half = len(records) // 2
    started = time.perf_counter()
    await asyncio.gather(
        first.copy_records_to_table(STAGED_TABLE, records=records[:half], columns=columns),
        second.copy_records_to_table(STAGED_TABLE, records=records[half:], columns=columns),
    )
    attached = asyncio.Event()
    vector_built = asyncio.Event()
    postings_built = asyncio.Event()
    statistics: list[asyncpg.Record] = []

    async def vector_index() -> float:
        if attach_first:
            await attached.wait()
        await first.execute(f"SET maintenance_work_mem = '{memory_mb}MB'")
        await first.execute(
            f"CREATE INDEX ON {STAGED_TABLE} USING hnsw ({hnsw_index_column(dimensions)}) "
            f"WHERE {HNSW_INDEX_PREDICATE}"
        )
        vector_built.set()
        return time.perf_counter()

    async def attach() -> float:
        for statement in STAGED_INDEXES:
            await second.execute(statement.format(table=STAGED_TABLE))
        attach_chunks = (
            f"ALTER TABLE chunks ATTACH PARTITION {STAGED_TABLE} "
            f"FOR VALUES IN ('{STAGED_COLLECTION}')"
        )
        if attach_first:
            await second.execute(attach_chunks)
        else:
            # Published at once, in one transaction: the chunks, their statistics, words
            # and postings (the last attached as the collection's table of postings).
            await vector_built.wait()
            await postings_built.wait()
            async with second.transaction():
                await second.execute(attach_chunks)
                await second.execute(
                    "INSERT INTO keyword_collections "
                    "(collection_id, chunk_count, total_length, postings_key) "
                    "VALUES ($1, $2, $3, $4)",
                    STAGED_COLLECTION,
                    statistics[0]["chunks"],
                    statistics[0]["length"],
                    key,
                )
                await second.execute(
                    "INSERT INTO keyword_terms (id, collection_id, term, document_frequency) "
                    "OVERRIDING SYSTEM VALUE "
                    "SELECT id, $1, term, document_frequency FROM bench_staged_terms",
                    STAGED_COLLECTION,
                )
                await second.execute(
                    f"ALTER TABLE keyword_postings ATTACH PARTITION {STAGED_POSTINGS_TABLE} "
                    f"FOR VALUES IN ({key})"
                )
        attached.set()
        return time.perf_counter()

    async def postings() -> float:
        for statement in STAGED_POSTINGS:
            await third.execute(statement.format(table=STAGED_TABLE, key=key))
        statistics.append(await third.fetchrow(STAGED_STATISTICS.format(table=STAGED_TABLE)))
        postings_built.set()
        return time.perf_counter()

    vector_done, attach_done, postings_done = await asyncio.gather(
        vector_index(), attach(), postings()
    )
    return attach_done - started, max(vector_done, attach_done, postings_done) - started


async def cache_entry(database_handle: Database, rows: list[Any]) -> None:
    """The rows as a complete entry of the processed-document cache, which a bulk load
    stages its chunks from."""
    async with database_handle.session() as session:
        await session.execute(
            text(
                "INSERT INTO processed_documents (cache_key, content_sha256, chunk_size, "
                "chunk_overlap, embedding_model, chunk_count, state) "
                "VALUES (:key, 'bench', 1000, 200, 'bench', :count, 'complete')"
            ),
            {"key": BULK_CACHE_KEY, "count": len(rows)},
        )
        await ProcessedDocumentRepository(session).copy_chunks(
            [
                (BULK_CACHE_KEY, index, text_, "{}", vector)
                for (_, _, index, text_, _, vector) in rows
            ]
        )


async def ragstore_bulk_load(
    database_handle: Database, settings: Settings, document_id: uuid.UUID, count: int
) -> float:
    """ragstore's bulk load of the cached rows into a new collection (app/ingestion/
    bulk_load.py): staged, then published in a transaction as an upload's commit does. The
    collection's tables from the round before are dropped first."""
    async with database_handle.session() as session:
        partition = (
            await session.execute(text(f"SELECT chunk_partition_name('{BULK_COLLECTION}')"))
        ).scalar_one()
        if (await session.execute(text(f"SELECT to_regclass('{partition}')"))).scalar():
            await session.execute(text(f"ALTER TABLE chunks DETACH PARTITION {partition}"))
            await session.execute(text(f"DROP TABLE {partition}"))
        postings = (
            await session.execute(
                text(
                    "SELECT keyword_partition_name(postings_key) FROM keyword_collections "
                    f"WHERE collection_id = '{BULK_COLLECTION}'"
                )
            )
        ).scalar()
        if postings:
            await session.execute(text(f"ALTER TABLE keyword_postings DETACH PARTITION {postings}"))
            await session.execute(text(f"DROP TABLE {postings}"))
        for table in ("keyword_terms", "keyword_collections"):
            await session.execute(
                text(f"DELETE FROM {table} WHERE collection_id = '{BULK_COLLECTION}'")
            )
    bulk_loads = BulkLoads(database_handle, settings)
    started = time.perf_counter()
    source = CachedChunks(BULK_CACHE_KEY, document_id, BULK_COLLECTION, {"filename": "bench.txt"})
    async with (
        bulk_loads.staged(source, count) as staged,
        database_handle.session() as session,
    ):
        assert await ChunkPartitionRepository(session).claim_first_fill(BULK_COLLECTION)
        await bulk_loads.publish(session, staged, document_id)
    return time.perf_counter() - started


async def emptied(
    database_handle: Database, first_fill: bool, keyword_index: bool, metadata_index: bool
) -> str:
    """The collection's table and keyword index emptied, its HNSW index dropped for a first
    fill, the BM25 triggers and the metadata index on or off; the metadata index's
    definition, for `restored`."""
    toggle = "ENABLE" if keyword_index else "DISABLE"
    async with database_handle.session() as session:
        partition = (
            await session.execute(text(f"SELECT chunk_partition_name('{COLLECTION}')"))
        ).scalar_one()
        definition = (
            await session.execute(text(f"SELECT pg_get_indexdef('{METADATA_INDEX}'::regclass)"))
        ).scalar_one()
        if not metadata_index:
            await session.execute(text(f"DROP INDEX {METADATA_INDEX}"))
        # TRUNCATE, not DELETE: deleted vectors stay in the HNSW graph, and pgvector adds
        # a duplicate of a vector already there at almost no cost.
        await session.execute(text("TRUNCATE chunks"))
        # The collection's statistics row goes, and with it its postings' key (migration
        # 0017): the next write makes a table of postings for a new key, as a new
        # collection's does. A first fill's is made when its postings are built.
        postings_tables = (
            await session.execute(
                text("SELECT keyword_partition_name(postings_key) FROM keyword_collections")
            )
        ).scalars()
        for postings in list(postings_tables):
            await session.execute(text(f"DROP TABLE IF EXISTS {postings}"))
        await session.execute(text("TRUNCATE keyword_postings, keyword_terms, keyword_collections"))
        if first_fill:
            await session.execute(text(f"DROP INDEX IF EXISTS {partition}_embedding_hnsw"))
        for trigger in ("keyword_index_add", "keyword_index_remove", "keyword_index_change"):
            await session.execute(text(f"ALTER TABLE chunks {toggle} TRIGGER {trigger}"))
    return str(definition)


async def restored(database_handle: Database, metadata_index: bool, definition: str) -> None:
    async with database_handle.session() as session:
        await session.execute(text("ALTER TABLE chunks ENABLE TRIGGER USER"))
        if not metadata_index:
            await session.execute(text(definition))


def raw_url(url: str) -> str:
    """asyncpg's URL of the database SQLAlchemy's URL names."""
    return url.replace("postgresql+asyncpg", "postgresql")


async def measure(count: int, repeat: int, dimensions: int) -> list[list[object]]:
    # The provider only fixes the column's dimension here; nothing is embedded.
    with database(**{**UPSTREAM_EMBEDDINGS, "embedding_dimensions": dimensions}) as (_, settings):
        assert settings.database_url
        handle = Database(settings.database_url, settings, embedded=None)
        (document_id,) = await seed_documents(handle, COLLECTION, ["bench.txt"])
        rows = rows_for(count, document_id, dimensions)
        raw = await asyncpg.connect(raw_url(settings.database_url))
        await register_vector(raw)
        await seed_documents(handle, STAGED_COLLECTION, [])
        (bulk_document,) = await seed_documents(handle, BULK_COLLECTION, ["bench.txt"])
        await cache_entry(handle, rows)
        staging = [await asyncpg.connect(raw_url(settings.database_url)) for _ in range(3)]
        for connection in staging:
            await register_vector(connection)
        timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for name in (
            FIRST_FILL_DEFERRED,
            FIRST_FILL,
            RAGSTORE,
            WITHOUT_BM25,
            WITHOUT_METADATA,
            BUILD_AFTER,
            STAGED_ATTACH_FIRST,
            STAGED_ANSWER,
            STAGED_INDEX_FIRST,
            RAGSTORE_BULK,
        ):
            timings[name] = []
        quantized = dimensions >= QUANTIZED_FROM
        if quantized:
            timings[BUILD_QUANTIZED_AFTER] = []
        for _ in range(repeat):  # alternate the contenders in every round
            for name, features in VARIANTS.items():
                timings[name].append(await load_variant(raw, features, rows, dimensions))
            for name, at_once in ((FIRST_FILL_DEFERRED, True), (FIRST_FILL, False)):
                timings[name].append(
                    await ragstore_first_fill(
                        handle, rows, memory_mb=settings.index_build_memory_mb, at_once=at_once
                    )
                )
            timings[RAGSTORE_BULK].append(
                await ragstore_bulk_load(handle, settings, bulk_document, len(rows))
            )
            timings[RAGSTORE].append(await ragstore_write(handle, rows))
            timings[WITHOUT_BM25].append(await ragstore_write(handle, rows, keyword_index=False))
            timings[WITHOUT_METADATA].append(
                await ragstore_write(handle, rows, metadata_index=False)
            )
            timings[BUILD_AFTER].append(await build_after_load(raw, rows, dimensions, False))
            for attach_first in (True, False):
                answer, everything = await staged_first_fill(
                    staging, rows, dimensions, settings.index_build_memory_mb, attach_first
                )
                if attach_first:
                    timings[STAGED_ANSWER].append(answer)
                    timings[STAGED_ATTACH_FIRST].append(everything)
                else:
                    timings[STAGED_INDEX_FIRST].append(everything)
            if quantized:
                timings[BUILD_QUANTIZED_AFTER].append(
                    await build_after_load(raw, rows, dimensions, True)
                )
        for connection in (raw, *staging):
            await connection.close()
        await handle.close()
    bare = median(timings["bare COPY (no indexes)"])
    return [
        [f"{dimensions:,}", name, median(values), count / median(values), bare / median(values)]
        for name, values in timings.items()
    ]


async def run(count: int, repeat: int, dimensions: list[int]) -> None:
    table = [row for size in dimensions for row in await measure(count, repeat, size)]
    report(
        "write_path",
        f"Write {count:,} chunks with dense vectors, median of {repeat}",
        ["dimensions", "write", "seconds", "rows/s", "rate vs bare COPY"],
        table,
        {"rows": count, "dimensions": dimensions, "repeat": repeat, "vectors": "dense"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dimensions", type=dimension_list, default=[1536, 384])
    arguments = parser.parse_args()
    sizes = arguments.dimensions
    asyncio.run(run(arguments.rows, arguments.repeat, sizes))


if __name__ == "__main__":
    main()
