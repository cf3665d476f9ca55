"""A selective filter still returns k rows when k rows match (a known pgvector-store failure:
the index returns its ef_search nearest rows first, and the filter then discards most)."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import chunk_partition, index_chunk_partition

ROWS = 5000
BUCKETS = 500  # each bucket holds ROWS / BUCKETS = 10 chunks: 0.2 % of the collection


async def fill(db: AsyncConnection) -> str:
    """The rows, in the collection's partition, whose name this returns."""
    await db.exec_driver_sql("INSERT INTO collections (id, name) VALUES ('big', 'big')")
    await db.exec_driver_sql(
        """INSERT INTO documents (id, collection_id, filename, content_type, size_bytes,
               content_sha256, status, chunk_size, chunk_overlap, cache_key)
           VALUES ('00000000-0000-0000-0000-000000000001', 'big', 'big.txt', 'text/plain',
               0, '', 'completed', 500, 50, '')"""
    )
    partition = await chunk_partition(db, "big")
    await db.exec_driver_sql(
        f"""INSERT INTO chunks (document_id, collection_id, chunk_index, text, metadata, embedding)
            SELECT '00000000-0000-0000-0000-000000000001', 'big', i, 'chunk ' || i,
                   jsonb_build_object('bucket', i % {BUCKETS}),
                   array(SELECT random() - 0.5 + i * 0 FROM generate_series(1, 384))::vector
            FROM generate_series(0, {ROWS - 1}) AS i"""
    )
    await db.commit()
    await index_chunk_partition(db, "big")
    await db.exec_driver_sql("ANALYZE chunks")
    await db.commit()
    return partition


async def test_a_filter_matching_few_rows_still_gets_k_of_them(
    client: httpx.AsyncClient, db: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    partition = await fill(db)
    plan = "\n".join(
        row[0]
        for row in await db.exec_driver_sql(
            "EXPLAIN SELECT id FROM chunks WHERE in_graph ORDER BY embedding <=> "
            "(SELECT embedding FROM chunks LIMIT 1) LIMIT 10"
        )
    )
    assert f"{partition}_embedding_hnsw" in plan, "the HNSW index serves nearest-neighbour queries"

    response = await client.post(
        "/api/collections/big/search",
        json={
            "query": "anything",
            "mode": "vector",
            "k": 20,
            # 2 % of the rows match, but PostgreSQL estimates a negated list as
            # matching most rows, so it walks the HNSW index and filters as it goes.
            "filters": {"type": "nin", "key": "bucket", "value": list(range(BUCKETS - 10))},
        },
    )

    results = response.json()["results"]
    assert len(results) == 20
    assert "exact scan" not in caplog.text, "the iterative index scan found them all"
    assert all(r["metadata"]["bucket"] >= BUCKETS - 10 for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
