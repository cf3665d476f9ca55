"""Chunks written into an indexed collection join its HNSW graph after the write answers.

Why (issue 17, the live path): an upload of 2,730 chunks at 1,536 dimensions
into a collection of 100,000 spent 2.7 s of its 3.9 s INSERT keeping the
collection's (binary-quantized) graph up to date, one core, inside the
upload's transaction.

What this migration does:
- `chunks.in_graph` (default true) says whether a chunk is in its
  collection's HNSW graph. Writes into a collection that has its index store
  their chunks with `in_graph = false`; the process that wrote them sets it
  to true in small batches after the answer (app/document/index_builds.py),
  which is when pgvector adds them to the graph.
- Every partition's HNSW index becomes partial, `WHERE in_graph`: rebuilt
  here, at the cost of a build (about 4 s per 100,000 chunks at 1,536
  dimensions on 2 cores).
- `ix_chunks_graph_pending` (a partial B-tree, `WHERE NOT in_graph`) finds a
  collection's pending chunks, which a vector search reads by an exact scan
  beside the graph's candidates (app/search/repository.py).

The BM25 trigger on UPDATE already ignores rows whose words did not change.

Revision ID: 0014_chunks_graph_pending
Revises: 0013_keyword_index_tuning
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_chunks_graph_pending"
down_revision: str | None = "0013_keyword_index_tuning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every attached partition's HNSW index: its name, table and definition.
HNSW_INDEXES = """
    SELECT i.relname::text, p.relname::text, pg_get_indexdef(i.oid)
    FROM pg_inherits h
    JOIN pg_class p ON p.oid = h.inhrelid
    JOIN pg_index x ON x.indrelid = p.oid
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_am a ON a.oid = i.relam
    WHERE h.inhparent = 'chunks'::regclass AND a.amname = 'hnsw'
    ORDER BY 1
"""


def _rebuild_hnsw_indexes(predicate: str) -> None:
    """Each partition's HNSW index again, with its own options, and `predicate` (or none)."""
    for index, _partition, definition in op.get_bind().execute(sa.text(HNSW_INDEXES)).all():
        unfiltered = definition.split(" WHERE ")[0]
        op.execute(f'DROP INDEX "{index}"')  # names are chunk_partition_name()'s hex digits
        op.execute(unfiltered + (f" WHERE {predicate}" if predicate else ""))


def upgrade() -> None:
    op.add_column(
        "chunks",
        sa.Column(
            "in_graph",
            sa.Boolean(),
            server_default=sa.text("true"),
            nullable=False,
            comment="Whether the chunk is in its collection's HNSW graph yet; false for a "
            "moment after a write into an indexed collection.",
        ),
    )
    op.execute("SET LOCAL maintenance_work_mem = '512MB'")
    _rebuild_hnsw_indexes("in_graph")
    op.execute("CREATE INDEX ix_chunks_graph_pending ON chunks (collection_id) WHERE NOT in_graph")


def downgrade() -> None:
    op.execute("DROP INDEX ix_chunks_graph_pending")
    op.execute("SET LOCAL maintenance_work_mem = '512MB'")
    _rebuild_hnsw_indexes("")  # the pending chunks join the graph in the rebuild
    op.drop_column("chunks", "in_graph")
