"""From 1,024 dimensions, the HNSW index holds binary-quantized vectors.

At 1,536 dimensions keeping the full-precision HNSW index up to date was 89%
of a write (benchmark 2b). An index on `binary_quantize(embedding)::bit(n)`
(one bit per dimension, Hamming distance) is built 3.2x and kept up to date
3.6x faster, and searches re-rank its best candidates by the full vectors,
which stay in `chunks.embedding` (benchmark 4c: recall@10 0.982 with 200
candidates re-ranked, against 0.958 for the full-precision index, at
100,000 rows). It also indexes any dimension the `vector` type holds: the
full-precision index stops at 2,000 (text-embedding-3-large has 3,072).

Below 1,024 dimensions nothing changes. The dimension is read from the
column, as the first revision made it. The new index is built beside the old
one and swapped in (CONCURRENTLY, outside a transaction), which takes a
while on a large table (23 s per 100,000 rows at 1,536 dimensions here):
writes go on, and searches of this version, which order by the quantized
expression, scan exactly until the swap. The downgrade rebuilds the index
the first revision made, the same way.

Revision ID: 0011_quantized_vector_index
Revises: 0010_file_batches
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_quantized_vector_index"
down_revision: str | None = "0010_file_batches"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUANTIZED_FROM = 1024


def _dimensions() -> int:
    dimensions = op.get_bind().scalar(
        sa.text(
            "SELECT atttypmod FROM pg_attribute "
            "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
        )
    )
    return int(dimensions)


def _rebuild(indexed: str) -> None:
    """Build the new index beside the old one, then swap them, outside a transaction
    (CONCURRENTLY), so writes and searches go on meanwhile."""
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_chunks_embedding_hnsw_rebuilt")
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_chunks_embedding_hnsw_rebuilt ON chunks "
            f"USING hnsw ({indexed})"
        )
        op.execute("DROP INDEX CONCURRENTLY ix_chunks_embedding_hnsw")
        op.execute(
            "ALTER INDEX ix_chunks_embedding_hnsw_rebuilt RENAME TO ix_chunks_embedding_hnsw"
        )


def upgrade() -> None:
    dimensions = _dimensions()
    if dimensions >= QUANTIZED_FROM:
        _rebuild(f"(binary_quantize(embedding)::bit({dimensions})) bit_hamming_ops")


def downgrade() -> None:
    dimensions = _dimensions()
    if dimensions >= QUANTIZED_FROM:
        _rebuild(
            f"(embedding::halfvec({dimensions})) halfvec_cosine_ops"
            if dimensions > 2000
            else "embedding vector_cosine_ops"
        )
