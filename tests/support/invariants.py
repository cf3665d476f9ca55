"""What must hold in PostgreSQL after any mix of uploads, deletes, retries and failures."""

import asyncio
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# Each posting with its collection, named by its key (migration 0017). A deleted collection's
# statistics row, and so its key, may go before its chunks do (cascades): its postings then
# wait in their table, which no search reads any more, for the sweep to drop it whole.
POSTINGS_WITH_COLLECTION = """(
            SELECT k.collection_id, p.*
            FROM keyword_postings p JOIN keyword_collections k USING (postings_key))"""

# Each query counts the rows that break one rule; every count must be 0.
VIOLATIONS = {
    "completed documents whose chunk_count is not their number of chunks": """
        SELECT count(*) FROM documents d
        WHERE d.status = 'completed'
          AND d.chunk_count <> (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)""",
    "chunks of documents that are not completed": """
        SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id
        WHERE d.status <> 'completed'""",
    "chunks filed under another collection than their document's": """
        SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id
        WHERE c.collection_id <> d.collection_id""",
    "chunks whose copy of the metadata is not their document's": """
        SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id
        WHERE NOT c.metadata @> d.metadata""",
    "jobs left queued or running": """
        SELECT count(*) FROM ingestion_jobs WHERE state IN ('queued', 'running')""",
    "documents pending or processing with no job to finish them": """
        SELECT count(*) FROM documents d
        WHERE d.status IN ('pending', 'processing')
          AND NOT EXISTS (SELECT 1 FROM ingestion_jobs j WHERE j.document_id = d.id
                          AND j.generation = d.generation AND j.state IN ('queued', 'running'))""",
    "stored files of completed documents": """
        SELECT count(*) FROM document_files f JOIN documents d ON d.id = f.document_id
        WHERE d.status = 'completed'""",
    "cache entries left half-built": """
        SELECT count(*) FROM processed_documents WHERE state = 'building'""",
    # The BM25 index (migration 0007) against what the chunks hold now.
    "collections whose BM25 chunk count or total length is not their chunks'": """
        SELECT count(*)
        FROM (SELECT collection_id, count(*) AS chunks,
                     sum(keyword_length(text_search)) AS length
              FROM chunks GROUP BY collection_id) c
        FULL JOIN keyword_collections k USING (collection_id)
        WHERE coalesce(c.chunks, 0) <> coalesce(k.chunk_count, 0)
           OR coalesce(c.length, 0) <> coalesce(k.total_length, 0)""",
    "BM25 words whose document frequency is not their number of chunks": """
        SELECT count(*)
        FROM (SELECT c.collection_id, w.lexeme, count(*) AS chunks
              FROM chunks c CROSS JOIN LATERAL unnest(c.text_search) w
              GROUP BY c.collection_id, w.lexeme) e
        FULL JOIN keyword_terms t ON t.collection_id = e.collection_id AND t.term = e.lexeme
        WHERE e.chunks IS DISTINCT FROM t.document_frequency""",
    "BM25 postings missing, left behind, in another collection's table, or not their "
    "chunk's frequency and length": f"""
        SELECT count(*)
        FROM (SELECT c.collection_id, c.id AS chunk_id, t.id AS term_id,
                     greatest(cardinality(w.positions), 1) AS frequency,
                     keyword_length(c.text_search) AS length
              FROM chunks c CROSS JOIN LATERAL unnest(c.text_search) w
              JOIN keyword_terms t ON t.collection_id = c.collection_id
                                  AND t.term = w.lexeme) e
        -- In the collection's own table of postings (migrations 0016 and 0017).
        FULL JOIN {POSTINGS_WITH_COLLECTION} p USING (collection_id, chunk_id, term_id)
        WHERE e.frequency IS DISTINCT FROM p.term_frequency
           OR e.length IS DISTINCT FROM p.chunk_length""",
    # A first fill's postings are built after it answers (migration 0015): none may be
    # left waiting once that work has ended.
    "collections whose keyword index was left deferred": """
        SELECT count(*) FROM keyword_collections WHERE deferred""",
    # One partition per collection (migration 0012), each with its HNSW index.
    "chunks outside their collection's partition": """
        SELECT count(*) FROM chunks
        WHERE tableoid::regclass::text <> chunk_partition_name(collection_id)""",
    "chunk partitions holding chunks but no valid HNSW index": """
        SELECT count(*) FROM pg_inherits i
        WHERE i.inhparent = 'chunks'::regclass
          AND EXISTS (SELECT 1 FROM chunks c WHERE c.tableoid = i.inhrelid)
          AND NOT EXISTS (SELECT 1 FROM pg_index x
                          JOIN pg_class c ON c.oid = x.indexrelid
                          JOIN pg_am a ON a.oid = c.relam
                          WHERE x.indrelid = i.inhrelid AND a.amname = 'hnsw' AND x.indisvalid)""",
    # Writes into an indexed collection hand their chunks to its graph after they answer
    # (app/document/index_builds.py): none may be left out once that work has ended.
    "chunks left out of their collection's HNSW graph": """
        SELECT count(*) FROM chunks WHERE NOT in_graph""",
    "tables of a bulk load left staged (app/document/staging.py)": """
        SELECT count(*) FROM pg_tables WHERE tablename ~ '^staged_[0-9a-f]{32}_'""",
    "chunk partition tables left unattached": """
        SELECT count(*) FROM pg_class
        WHERE relkind = 'r' AND relname ~ '^chunks_[0-9a-f]{24}$' AND NOT relispartition""",
}
TEMP_PREFIXES = ("ragstore-upload-", "ragstore-job-")


def temp_files() -> set[Path]:
    """The upload and job copies in the temporary directory right now."""
    folder = Path(tempfile.gettempdir())
    return {path for prefix in TEMP_PREFIXES for path in folder.glob(f"{prefix}*")}


async def violations(
    db: AsyncConnection,
    deleted_collections: Sequence[str] = (),
    rules: Mapping[str, str] = VIOLATIONS,
) -> dict[str, int]:
    """Each broken rule with its count of offending rows (empty when all hold)."""
    found = {}
    for rule, sql in rules.items():
        count = await db.scalar(text(sql))
        if count:
            found[rule] = count
    if deleted_collections:
        resurrected = await db.scalar(
            text("SELECT count(*) FROM collections WHERE id = ANY(:ids)"),
            {"ids": list(deleted_collections)},
        )
        if resurrected:
            found["collections back after a successful DELETE"] = resurrected
    await db.commit()
    return found


async def settled_violations(
    db: AsyncConnection, deleted_collections: Sequence[str] = (), seconds: float = 15
) -> dict[str, int]:
    """The broken rules once the work in flight has ended: checked until none is broken or
    `seconds` pass (a worker may still be ending a job the test no longer waits for)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await violations(db, deleted_collections)
        if not found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)
