"""Two indexes for searches that read more than the best few rows.

- `ix_keyword_postings_term_id_impact` also covers each posting's frequency and
  length. It served a word's postings best first but held only the chunk id,
  so scoring a word's postings exactly (exhaustive BM25: `RAGSTORE_BM25_EXACT`,
  the questions that ragstore now scores exhaustively because their words have
  few postings, and the exact fallback of a filtered search) read each
  posting's frequency and length from the table, one random heap read per
  posting. Index-only, it took 53 ms instead of 563 ms at 100,000 chunks
  (benchmark 4, p50 of 100 Cranfield questions). The index grows by 8 bytes a
  posting.
- `ix_chunks_metadata`, a GIN index (jsonb_path_ops) on `chunks.metadata`,
  serves the containment (`@>`) that the filters `eq` and `in` compile to
  (`ne` and `nin` negate it, which no index serves). Without it, a selective
  filter could only walk the HNSW index until enough rows passed: a hybrid
  search filtered to 1% of 100,000 chunks read about 5,000 rows through it
  (316 ms with a cold cache); with it, the planner reads the 1,000 matching
  rows and ranks them exactly (8 ms).

CONCURRENTLY is not possible inside Alembic's transaction: on a large database
this revision holds a write lock on `keyword_postings` and `chunks` while the
indexes build (about 7 s per 7.7 million postings and 1 s per 100,000 chunks on
2 cores).

Revision ID: 0008_search_indexes
Revises: 0007_bm25_keyword_index
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_search_indexes"
down_revision: str | None = "0007_bm25_keyword_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postings_index(columns: str) -> None:
    op.execute("DROP INDEX ix_keyword_postings_term_id_impact")
    op.execute(
        "CREATE INDEX ix_keyword_postings_term_id_impact "
        f"ON keyword_postings (term_id, impact DESC) INCLUDE ({columns})"
    )


def upgrade() -> None:
    _postings_index("chunk_id, term_frequency, chunk_length")
    op.execute("CREATE INDEX ix_chunks_metadata ON chunks USING gin (metadata jsonb_path_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_chunks_metadata")
    _postings_index("chunk_id")
