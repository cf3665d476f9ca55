"""Keep chunk rows (and their vectors) inline instead of in TOAST.

A 384-d chunk row is about 2.6 KB with its text and tsvector, over
PostgreSQL's default 2 KB TOAST threshold, so the vector (the largest value)
was moved out of line: every exact scan and every distance computed for a
result then fetched it from the TOAST table, and every write stored it there.
Measured in benchmark 3 (3,000 chunks): the vector scan read 10,238 pages
plus 14.7 MB of TOAST against 753 pages for a table without TOAST.

`toast_tuple_target = 8160` (the most PostgreSQL allows) keeps rows up to a
page inline; only larger ones (2,000-d vectors with long texts) are still
compressed or moved out. It applies to rows written from now on: rows
already stored move inline when rewritten (`VACUUM FULL chunks`).

Revision ID: 0003_chunks_inline_vectors
Revises: 0002_background_jobs
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_chunks_inline_vectors"
down_revision: str | None = "0002_background_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("chunks", "processed_chunks")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")
