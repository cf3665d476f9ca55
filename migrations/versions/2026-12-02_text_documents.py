"""Text documents: texts inserted through the Python API are a document of their own kind.

`VectorDatabase.ainsert` appends texts (embedded by the caller or by ragstore)
to the collection's `vectordatabase` document. There is no file behind it, so
it has no content hash, no cache key and no chunking parameters. Before this
revision it carried placeholders (`''` and `0`); now `documents.source` says
which kind a row is, those columns are NULL exactly for `texts` documents
(a CHECK holds them to it), and such documents are always `completed`.

Revision ID: 0005_text_documents
Revises: 0004_document_versions
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_text_documents"
down_revision: str | None = "0004_document_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPLOAD_ONLY_COLUMNS = ("content_sha256", "cache_key", "chunk_size", "chunk_overlap")


def upgrade() -> None:
    op.add_column(
        "documents",
        sa.Column(
            "source",
            sa.Text(),
            server_default="upload",
            nullable=False,
            comment="upload: a file; texts: texts inserted through the Python API.",
        ),
    )
    op.create_check_constraint(
        op.f("ck_documents_source"), "documents", "source IN ('upload', 'texts')"
    )
    for column in UPLOAD_ONLY_COLUMNS:
        op.alter_column("documents", column, nullable=True)
    # The placeholder rows written by earlier versions of insert_texts.
    op.execute(
        "UPDATE documents SET source = 'texts', content_sha256 = NULL, cache_key = NULL, "
        "chunk_size = NULL, chunk_overlap = NULL, content_type = 'text/plain', "
        "size_bytes = (SELECT coalesce(sum(octet_length(text)), 0) FROM chunks "
        "              WHERE chunks.document_id = documents.id) "
        "WHERE content_sha256 = '' AND cache_key = ''"
    )
    op.create_check_constraint(
        op.f("ck_documents_upload_fields"),
        "documents",
        "(source = 'texts') = (content_sha256 IS NULL AND cache_key IS NULL "
        "AND chunk_size IS NULL AND chunk_overlap IS NULL)",
    )
    op.create_check_constraint(
        op.f("ck_documents_texts_completed"),
        "documents",
        "source = 'upload' OR status = 'completed'",
    )
    op.create_table_comment(
        "documents",
        "An uploaded file (OpenAI: a vector store file), or inserted texts.",
        existing_comment="An uploaded file (OpenAI: a vector store file).",
    )


def downgrade() -> None:
    op.create_table_comment(
        "documents",
        "An uploaded file (OpenAI: a vector store file).",
        existing_comment="An uploaded file (OpenAI: a vector store file), or inserted texts.",
    )
    op.drop_constraint(op.f("ck_documents_texts_completed"), "documents", type_="check")
    op.drop_constraint(op.f("ck_documents_upload_fields"), "documents", type_="check")
    op.execute(
        "UPDATE documents SET content_sha256 = '', cache_key = '', chunk_size = 0, "
        "chunk_overlap = 0, content_type = 'application/x-ragstore-vectors', size_bytes = 0 "
        "WHERE source = 'texts'"
    )
    for column in UPLOAD_ONLY_COLUMNS:
        op.alter_column("documents", column, nullable=False)
    op.drop_constraint(op.f("ck_documents_source"), "documents", type_="check")
    op.drop_column("documents", "source")
