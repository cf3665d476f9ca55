"""Benchmark 2: ragstore's chunk write vs a bare binary COPY of the same rows.

Where the time goes is shown by loading the same rows into tables that add
one thing at a time: the generated tsvector and its GIN index, the HNSW
index, and finally ragstore's own write (constraints and the BM25 keyword
index's triggers and the metadata GIN index included, and once more with
each of those left out, to show what it costs). The last row
builds the HNSW index after the load instead of maintaining it row by row.

    python -m bench.write_path [--rows 10000] [--repeat 3]
"""

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import text

from app.db.database import Database
from bench.common import database, median, report
from bench.corpus import paragraphs
from bench.seed import copy_chunks, seed_documents
from tests.support.fake_openai import embed_text

VARIANTS = {
    "bare COPY (no indexes)": "",
    "+ generated tsvector and GIN index": "tsvector",
    "+ HNSW index": "tsvector hnsw",
}


def rows_for(count: int, document_id: uuid.UUID) -> list[tuple[Any, ...]]:
    texts = paragraphs(count)
    return [
        (
            document_id,
            "bench",
            index,
            text,
            json.dumps({"filename": "bench.txt", "chunk_index": index}),
            np.asarray(embed_text(text, 384), dtype=np.float32),
        )
        for index, text in enumerate(texts)
    ]


async def load_variant(connection: asyncpg.Connection, features: str, rows: list[Any]) -> float:
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
            embedding vector(384){generated})"""
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


async def build_after_load(connection: asyncpg.Connection, rows: list[Any]) -> float:
    load = await load_variant(connection, "tsvector", rows)
    started = time.perf_counter()
    await connection.execute(
        "CREATE INDEX ON bench_chunks USING hnsw (embedding vector_cosine_ops)"
    )
    return load + time.perf_counter() - started


RAGSTORE = "ragstore chunk write (all of the above + constraints + BM25 + metadata index)"
WITHOUT_BM25 = "ragstore chunk write without the BM25 index (its triggers disabled)"
WITHOUT_METADATA = "ragstore chunk write without the metadata GIN index"
METADATA_INDEX = "ix_chunks_metadata"


async def ragstore_write(
    database_handle: Database, rows: list[Any], keyword_index: bool, metadata_index: bool = True
) -> float:
    """ragstore's COPY into an empty chunks table; with or without the BM25 triggers and
    the metadata index (dropped and rebuilt around the load when left out)."""
    toggle = "ENABLE" if keyword_index else "DISABLE"
    async with database_handle.session() as session:
        definition = (
            await session.execute(text(f"SELECT pg_get_indexdef('{METADATA_INDEX}'::regclass)"))
        ).scalar_one()
        if not metadata_index:
            await session.execute(text(f"DROP INDEX {METADATA_INDEX}"))
        await session.execute(text("ALTER TABLE chunks DISABLE TRIGGER USER"))
        await session.execute(text("DELETE FROM chunks"))
        await session.execute(text("TRUNCATE keyword_postings, keyword_terms, keyword_collections"))
        for trigger in ("keyword_index_add", "keyword_index_remove", "keyword_index_change"):
            await session.execute(text(f"ALTER TABLE chunks {toggle} TRIGGER {trigger}"))
    started = time.perf_counter()
    await copy_chunks(database_handle, rows)
    seconds = time.perf_counter() - started
    async with database_handle.session() as session:
        await session.execute(text("ALTER TABLE chunks ENABLE TRIGGER USER"))
        if not metadata_index:
            await session.execute(text(definition))
    return seconds


async def run(count: int, repeat: int) -> None:
    with database() as (_, settings):
        assert settings.database_url
        handle = Database(settings.database_url, settings, embedded=None)
        (document_id,) = await seed_documents(handle, "bench", ["bench.txt"])
        rows = rows_for(count, document_id)
        raw = await asyncpg.connect(
            settings.database_url.replace("postgresql+asyncpg", "postgresql")
        )
        await register_vector(raw)
        timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
        timings[RAGSTORE] = []
        timings[WITHOUT_BM25] = []
        timings[WITHOUT_METADATA] = []
        timings["bare COPY, then build the HNSW index"] = []
        for _ in range(repeat):  # alternate the contenders in every round
            for name, features in VARIANTS.items():
                timings[name].append(await load_variant(raw, features, rows))
            timings[RAGSTORE].append(await ragstore_write(handle, rows, keyword_index=True))
            timings[WITHOUT_BM25].append(await ragstore_write(handle, rows, keyword_index=False))
            timings[WITHOUT_METADATA].append(
                await ragstore_write(handle, rows, keyword_index=True, metadata_index=False)
            )
            timings["bare COPY, then build the HNSW index"].append(
                await build_after_load(raw, rows)
            )
        await raw.close()
        await handle.close()
    bare = median(timings["bare COPY (no indexes)"])
    table = [
        [name, median(values), count / median(values), bare / median(values)]
        for name, values in timings.items()
    ]
    ragstore_ratio = bare / median(timings[RAGSTORE])
    report(
        "write_path",
        f"Write {count:,} chunks (384-d), median of {repeat}: ragstore at {ragstore_ratio:.2f}x "
        "the bare COPY rate",
        ["write", "seconds", "rows/s", "rate vs bare COPY"],
        table,
        {"rows": count, "dimensions": 384, "repeat": repeat},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.rows, arguments.repeat))


if __name__ == "__main__":
    main()
