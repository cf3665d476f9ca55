"""Jobs are listed by collection, and a failed document says whether a retry can help.

- `ingestion_jobs.collection_id` and `filename`: where the job's upload went, kept
  after its document is deleted (the job stays, `cancelled`), so `GET /api/jobs`
  lists a collection's jobs and names their files with no join. Filled in from
  the documents for existing jobs.
- `documents.retryable`: for a failed document, whether a retry can fix it (the
  model provider failed) or not (the file itself cannot be processed: a retry
  would fail the same way). NULL exactly when the document is not failed.
  Documents that failed before this revision count as retryable.

Revision ID: 0006_job_listing
Revises: 0005_text_documents
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_job_listing"
down_revision: str | None = "0005_text_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ingestion_jobs",
        sa.Column(
            "collection_id",
            sa.Text(),
            nullable=True,
            comment="The collection its upload went to (kept after a delete).",
        ),
    )
    op.add_column(
        "ingestion_jobs",
        sa.Column(
            "filename",
            sa.Text(),
            nullable=True,
            comment="The file name of its upload (kept after a delete).",
        ),
    )
    op.execute(
        "UPDATE ingestion_jobs j SET collection_id = d.collection_id, filename = d.filename "
        "FROM documents d WHERE d.id = j.document_id"
    )
    op.create_index(
        "ix_ingestion_jobs_collection_id_created_at",
        "ingestion_jobs",
        ["collection_id", sa.text("created_at DESC")],
    )
    op.add_column(
        "documents",
        sa.Column(
            "retryable",
            sa.Boolean(),
            nullable=True,
            comment="For a failed document: whether a retry can fix it (the provider "
            "failed), or not (the file itself cannot be processed).",
        ),
    )
    op.execute("UPDATE documents SET retryable = true WHERE status = 'failed'")
    op.create_check_constraint(
        op.f("ck_documents_retryable_when_failed"),
        "documents",
        "(status = 'failed') = (retryable IS NOT NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_documents_retryable_when_failed"), "documents", type_="check")
    op.drop_column("documents", "retryable")
    op.drop_index("ix_ingestion_jobs_collection_id_created_at", table_name="ingestion_jobs")
    op.drop_column("ingestion_jobs", "filename")
    op.drop_column("ingestion_jobs", "collection_id")
