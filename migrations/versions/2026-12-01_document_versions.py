"""Document versions: every write of an upload, a job or a failure names the version it is for.

- `documents.generation` counts the versions of a document: a committed upload,
  an accepted background upload and a retry each take the next one. Work for
  an older generation is discarded (compare-and-set on the generation).
- `ingestion_jobs.generation` is the version a job processes. Jobs outlive
  their document: the foreign key sets `document_id` NULL, and two triggers
  end the jobs that can no longer apply, so no job is left `queued` or
  `running` for a version that is gone:
  - deleting a document (or its collection) ends its jobs `cancelled`;
  - a newer generation of a document ends older jobs `superseded`.
- `processed_documents.state`, `builder_id` and `lease_until`: a cache entry is built in
  short transactions while the upload is embedded (no transaction is held
  while the model provider works), so it is `building` until its last batch
  is stored, and `complete` after. A builder renews its lease with every
  batch; another upload of the same content waits for it, or takes over an
  entry whose lease ran out (its builder died).

Revision ID: 0004_document_versions
Revises: 0003_chunks_inline_vectors
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_document_versions"
down_revision: str | None = "0003_chunks_inline_vectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

END_JOBS_OF_DELETED_DOCUMENT = """
CREATE FUNCTION end_jobs_of_deleted_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ingestion_jobs
       SET state = 'cancelled', error = 'the document was deleted', finished_at = now()
     WHERE document_id = OLD.id AND state IN ('queued', 'running');
    RETURN OLD;
END $$
"""
END_JOBS_OF_OLDER_GENERATIONS = """
CREATE FUNCTION end_jobs_of_older_generations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ingestion_jobs
       SET state = 'superseded', error = 'a newer upload of the document took its place',
           finished_at = now()
     WHERE document_id = NEW.id AND generation < NEW.generation
       AND state IN ('queued', 'running');
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.add_column(
        "documents",
        sa.Column(
            "generation",
            sa.Integer(),
            server_default="1",
            nullable=False,
            comment="The current version: raised by every committed or accepted upload and "
            "every retry; work for an older generation is discarded.",
        ),
    )
    op.add_column(
        "ingestion_jobs",
        sa.Column(
            "generation",
            sa.Integer(),
            server_default="1",
            nullable=False,
            comment="The document generation this job processes.",
        ),
    )
    op.drop_constraint(op.f("ck_ingestion_jobs_state"), "ingestion_jobs", type_="check")
    op.create_check_constraint(
        op.f("ck_ingestion_jobs_state"),
        "ingestion_jobs",
        "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'superseded')",
    )
    op.drop_constraint(
        op.f("fk_ingestion_jobs_document_id_documents"), "ingestion_jobs", type_="foreignkey"
    )
    op.alter_column("ingestion_jobs", "document_id", nullable=True)
    op.create_foreign_key(
        op.f("fk_ingestion_jobs_document_id_documents"),
        "ingestion_jobs",
        "documents",
        ["document_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.execute(END_JOBS_OF_DELETED_DOCUMENT)
    op.execute(
        "CREATE TRIGGER end_jobs_of_deleted_document BEFORE DELETE ON documents "
        "FOR EACH ROW EXECUTE FUNCTION end_jobs_of_deleted_document()"
    )
    op.execute(END_JOBS_OF_OLDER_GENERATIONS)
    op.execute(
        "CREATE TRIGGER end_jobs_of_older_generations AFTER UPDATE OF generation ON documents "
        "FOR EACH ROW WHEN (NEW.generation > OLD.generation) "
        "EXECUTE FUNCTION end_jobs_of_older_generations()"
    )
    op.add_column(
        "processed_documents",
        sa.Column(
            "state",
            sa.Text(),
            server_default="complete",
            nullable=False,
            comment="building while its chunks are stored batch by batch; complete after.",
        ),
    )
    op.add_column(
        "processed_documents",
        sa.Column(
            "lease_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="A building entry's builder renews this; past it, another may take over.",
        ),
    )
    op.add_column(
        "processed_documents",
        sa.Column(
            "builder_id",
            sa.Uuid(),
            nullable=True,
            comment="The upload building this entry (while building).",
        ),
    )
    op.create_check_constraint(
        op.f("ck_processed_documents_state"),
        "processed_documents",
        "state IN ('building', 'complete')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_processed_documents_state"), "processed_documents", type_="check")
    op.execute("DELETE FROM processed_documents WHERE state = 'building'")
    op.drop_column("processed_documents", "builder_id")
    op.drop_column("processed_documents", "lease_until")
    op.drop_column("processed_documents", "state")
    op.execute("DROP TRIGGER end_jobs_of_older_generations ON documents")
    op.execute("DROP FUNCTION end_jobs_of_older_generations()")
    op.execute("DROP TRIGGER end_jobs_of_deleted_document ON documents")
    op.execute("DROP FUNCTION end_jobs_of_deleted_document()")
    op.execute("DELETE FROM ingestion_jobs WHERE document_id IS NULL")
    op.drop_constraint(
        op.f("fk_ingestion_jobs_document_id_documents"), "ingestion_jobs", type_="foreignkey"
    )
    op.alter_column("ingestion_jobs", "document_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_ingestion_jobs_document_id_documents"),
        "ingestion_jobs",
        "documents",
        ["document_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.execute(
        "UPDATE ingestion_jobs SET state = 'failed' WHERE state IN ('cancelled', 'superseded')"
    )
    op.drop_constraint(op.f("ck_ingestion_jobs_state"), "ingestion_jobs", type_="check")
    op.create_check_constraint(
        op.f("ck_ingestion_jobs_state"),
        "ingestion_jobs",
        "state IN ('queued', 'running', 'succeeded', 'failed')",
    )
    op.drop_column("ingestion_jobs", "generation")
    op.drop_column("documents", "generation")
