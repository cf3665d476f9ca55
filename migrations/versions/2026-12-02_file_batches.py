"""File batches (OpenAI: vector store file batches): files added to a store together.

- `file_batches`: a batch of files added to one collection at once, and when it
  was cancelled, if it was.
- `file_batch_files`: the files of a batch, and whether cancelling the batch
  stopped one (its pending document was deleted, so it counts as cancelled).

A batch's status and counts are not stored: they are read from the
documents its files made in its collection, which the job worker updates.

Revision ID: 0010_file_batches
Revises: 0009_stored_files
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_file_batches"
down_revision: str | None = "0009_stored_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "file_batches",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("collection_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_file_batches_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_batches")),
        comment="Files added to a collection together (OpenAI: a vector store file batch).",
    )
    op.create_index("ix_file_batches_collection_id", "file_batches", ["collection_id"])
    op.create_table(
        "file_batch_files",
        sa.Column("batch_id", sa.Text(), nullable=False),
        sa.Column("file_id", sa.Text(), nullable=False),
        sa.Column(
            "cancelled",
            sa.Boolean(),
            server_default=sa.false(),
            nullable=False,
            comment="Cancelling the batch stopped this file before it was processed.",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["file_batches.id"],
            name=op.f("fk_file_batch_files_batch_id_file_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_file_batch_files_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "file_id", name=op.f("pk_file_batch_files")),
        comment="A file of a file batch.",
    )
    op.create_index("ix_file_batch_files_file_id", "file_batch_files", ["file_id"])


def downgrade() -> None:
    op.drop_index("ix_file_batch_files_file_id", table_name="file_batch_files")
    op.drop_table("file_batch_files")
    op.drop_index("ix_file_batches_collection_id", table_name="file_batches")
    op.drop_table("file_batches")
