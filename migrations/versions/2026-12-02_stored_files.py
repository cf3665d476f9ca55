"""Stored files (OpenAI's Files API), documents made from them, and vector-store fields.

- `files`: an uploaded file kept as it was sent (OpenAI: a file object), with
  its purpose, size and SHA-256; `file_parts` holds its bytes in 1 MiB rows,
  as `document_files` does for uploads waiting to be processed. Ids look like
  OpenAI's (`file-` and 32 hex digits), so programs that check them still work.
- `documents.file_id`: the file a document was made from, when it came through
  the Files API. A file is in a collection at most once (a partial unique
  index), and deleting the file deletes its documents everywhere (OpenAI:
  "delete a file and remove it from all vector stores"); their chunks follow
  by the existing cascade, and the keyword index by its triggers.
- `collections.description` and `collections.expires_after_days`: a vector
  store's description and its `expires_after` (days after it was last active).

Revision ID: 0009_stored_files
Revises: 0008_search_indexes
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_stored_files"
down_revision: str | None = "0008_search_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_sha256", sa.Text(), nullable=False, comment="Hex SHA-256 of the bytes."),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
        comment="An uploaded file, kept as sent (OpenAI: a file object).",
    )
    op.create_index("ix_files_created_at_id", "files", ["created_at", "id"])
    op.create_table(
        "file_parts",
        sa.Column("file_id", sa.Text(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_file_parts_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("file_id", "part", name=op.f("pk_file_parts")),
        comment="The bytes of a stored file, 1 MiB per row.",
    )
    op.add_column(
        "documents",
        sa.Column(
            "file_id",
            sa.Text(),
            nullable=True,
            comment="The stored file this document was made from (OpenAI: the vector store "
            "file's id), when it came through the Files API.",
        ),
    )
    op.create_foreign_key(
        op.f("fk_documents_file_id_files"),
        "documents",
        "files",
        ["file_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        "uq_documents_collection_id_file_id",
        "documents",
        ["collection_id", "file_id"],
        unique=True,
        postgresql_where=sa.text("file_id IS NOT NULL"),
    )
    op.create_index(
        "ix_documents_file_id",
        "documents",
        ["file_id"],
        postgresql_where=sa.text("file_id IS NOT NULL"),
    )
    op.add_column(
        "collections",
        sa.Column("description", sa.Text(), nullable=True, comment="OpenAI: description."),
    )
    op.add_column(
        "collections",
        sa.Column(
            "expires_after_days",
            sa.Integer(),
            nullable=True,
            comment="OpenAI: expires_after.days, counted from the last activity.",
        ),
    )
    op.create_check_constraint(
        op.f("ck_collections_expires_after_days"),
        "collections",
        "expires_after_days BETWEEN 1 AND 365",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_collections_expires_after_days"), "collections", type_="check")
    op.drop_column("collections", "expires_after_days")
    op.drop_column("collections", "description")
    op.drop_index("ix_documents_file_id", table_name="documents")
    op.drop_index("uq_documents_collection_id_file_id", table_name="documents")
    op.drop_constraint(op.f("fk_documents_file_id_files"), "documents", type_="foreignkey")
    op.drop_column("documents", "file_id")
    op.drop_table("file_parts")
    op.drop_index("ix_files_created_at_id", table_name="files")
    op.drop_table("files")
