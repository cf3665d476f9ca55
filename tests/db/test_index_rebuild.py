"""The README's recipe for rebuilding the HNSW index with a larger graph (benchmark 4):
run as an operator would, it leaves search on the new index and the schema in step."""

from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tests.support.db import scalar, schema_differences, vector_index_built
from tests.support.uploads import long_text, upload

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- hnsw-rebuild -->"
PARTITION = "chunks_2a21fe6d592a19b7de898b50"  # chunk_partition_name('big'), as the README says
INDEX_NAMES = (
    "SELECT array_agg(indexname ORDER BY indexname) FROM pg_indexes "
    f"WHERE tablename = '{PARTITION}'"
)


def rebuild_statements() -> list[str]:
    """The statements of the SQL block that follows the marker in the README."""
    after_marker = README.read_text().split(MARKER, 1)[1]
    block = after_marker.split("```sql", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if not line.lstrip().startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


async def test_the_readme_rebuild_moves_search_to_a_larger_index_without_schema_drift(
    client: httpx.AsyncClient, database_url: str, db: AsyncConnection
) -> None:
    await client.post("/api/collections", json={"name": "big", "id": "big"})
    uploaded = await upload(client, long_text(), "a.txt", route="/api/collections/big/documents")
    assert uploaded.status_code == 201, uploaded.text
    await vector_index_built(db, "big")
    indexes_before = await scalar(db, INDEX_NAMES)

    # CREATE/DROP INDEX CONCURRENTLY refuse to run inside a transaction block.
    operator = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with operator.connect() as connection:
        for statement in rebuild_statements():
            await connection.execute(text(statement))
        await connection.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(
            (
                await connection.execute(
                    text(
                        "EXPLAIN SELECT id FROM chunks WHERE in_graph "
                        "ORDER BY embedding <=> (SELECT embedding FROM chunks LIMIT 1) LIMIT 10"
                    )
                )
            ).scalars()
        )
        differences = await connection.run_sync(schema_differences)
    await operator.dispose()
    response = await client.post(
        "/api/collections/big/search", json={"query": "Part 3", "k": 3, "mode": "vector"}
    )

    options = await scalar(
        db, f"SELECT reloptions FROM pg_class WHERE relname = '{PARTITION}_embedding_hnsw'"
    )
    assert options == ["m=32", "ef_construction=128"]
    assert await scalar(db, INDEX_NAMES) == indexes_before, "the same indexes, by name"
    assert await scalar(db, "SELECT chunk_partition_name('big')") == PARTITION
    assert f"{PARTITION}_embedding_hnsw" in plan
    assert differences == [], "alembic sees the rebuilt index as the migration's"
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 3
