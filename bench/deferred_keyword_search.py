"""Benchmark 4e: a keyword search while a new collection's BM25 postings are deferred.

Since migration 0015 a collection's first chunks (up to
RAGSTORE_VECTOR_INDEX_DEFERRED_MAX_CHUNKS, 10,000) are committed and answered
before their BM25 postings exist; they are built just after, beside the HNSW
build (app/document/index_builds.py). Until then a keyword search scores the
collection's chunks from their words (app/search/bm25.py): the same BM25,
by a scan of the collection.

This writes N chunks (benchmark 4's blended Cranfield abstracts with the
fake upstream's dense vectors of their text, or generated paragraphs when the
corpus is absent) into a new collection with their postings, and times
keyword and hybrid searches through ragstore's search service (the SQL and
the rows' decoding, no HTTP). Then it puts the collection in the deferred
state a first fill leaves (postings, words and statistics removed, the flag
set) and times the same searches again. Cranfield questions (the corpus's
first ones), an untimed pass first.

    python -m bench.deferred_keyword_search [--chunks 2730,10000] [--questions 20]
"""

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import numpy as np
from sqlalchemy import text

from app.db.database import Database
from app.search.service import SearchQuery, SearchService
from bench.common import database, dimension_list, median, percentile, report
from bench.search_scale import blend, source_texts
from bench.seed import copy_chunks, seed_documents
from bench.upstream import UPSTREAM_EMBEDDINGS
from bench.write_path import COLLECTION
from tests.support.fake_openai import dense_embed_texts

DIMENSIONS = 1536
MODES = ("keyword", "hybrid")
DEFER = (
    "DELETE FROM keyword_postings",
    "DELETE FROM keyword_terms",
    "UPDATE keyword_collections SET deferred = true, chunk_count = 0, total_length = 0",
)


async def timed(
    database_handle: Database, service: SearchService, questions: list[str], mode: str
) -> list[float]:
    vectors = dense_embed_texts(questions, DIMENSIONS)
    milliseconds = []
    for timed_pass in (False, True):
        for question, vector in zip(questions, vectors, strict=True):
            query = SearchQuery(COLLECTION, question, k=10, mode=mode)  # type: ignore[arg-type]
            async with database_handle.read_session() as session:
                started = time.perf_counter()
                await service.search_by_vector(session, query, vector)
                elapsed = time.perf_counter() - started
            if timed_pass:
                milliseconds.append(elapsed * 1000)
    return milliseconds


def chunk_rows(document_id: uuid.UUID, texts: list[str], count: int) -> list[tuple[Any, ...]]:
    """`count` chunks blended from the texts as benchmark 4's are."""
    base = dense_embed_texts(texts, DIMENSIONS)
    vectors, _, blended = blend(base, texts, count, np.random.default_rng(3))
    return [
        (document_id, COLLECTION, index, chunk, json.dumps({"chunk_index": index}), vector)
        for index, (chunk, vector) in enumerate(zip(blended, vectors, strict=True))
    ]


async def measure(count: int, texts: list[str], questions: list[str]) -> list[list[object]]:
    overrides = {**UPSTREAM_EMBEDDINGS, "embedding_dimensions": DIMENSIONS}
    with database(**overrides) as (_, settings):
        assert settings.database_url
        handle = Database(settings.database_url, settings, embedded=None)
        (document_id,) = await seed_documents(handle, COLLECTION, ["bench.txt"])
        await copy_chunks(handle, chunk_rows(document_id, texts, count))
        async with handle.session() as session:
            await session.execute(text("ANALYZE"))
        # Only searches with a vector given: the embedding model is never called.
        service = SearchService(None, settings)  # type: ignore[arg-type]
        rows: list[list[object]] = []
        for state in ("built", "deferred"):
            if state == "deferred":
                async with handle.session() as session:
                    for statement in DEFER:
                        await session.execute(text(statement))
            for mode in MODES:
                values = await timed(handle, service, questions, mode)
                rows.append([f"{count:,}", state, mode, median(values), percentile(values, 0.95)])
        await handle.close()
    return rows


async def run(counts: list[int], question_count: int) -> None:
    texts, questions = source_texts(1400, question_count)
    table = [row for count in counts for row in await measure(count, texts, questions)]
    report(
        "deferred_keyword_search",
        f"Search, k=10, {len(questions)} questions, {DIMENSIONS:,}-d dense vectors",
        ["chunks", "keyword index", "mode", "p50 ms", "p95 ms"],
        table,
        {"chunks": counts, "questions": len(questions), "dimensions": DIMENSIONS},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=dimension_list, default=[2730, 10000])
    parser.add_argument("--questions", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.chunks, arguments.questions))


if __name__ == "__main__":
    main()
