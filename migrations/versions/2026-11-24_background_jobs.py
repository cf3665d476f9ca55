"""Background jobs: procrastinate's queue, ingestion job progress, stored uploads.

procrastinate's own SQL schema is applied here (and removed on downgrade), so
Alembic stays the one owner of the schema. A procrastinate upgrade that
changes its schema needs a new revision that applies its migration files.

Revision ID: 0002_background_jobs
Revises: 0001_initial_schema
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects import postgresql

revision: str = "0002_background_jobs"
down_revision: str | None = "0001_initial_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROP_PROCRASTINATE = r"""
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tablename FROM pg_tables
             WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\_%' LOOP
        EXECUTE format('DROP TABLE %I CASCADE', r.tablename);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%' LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', r.signature);
    END LOOP;
    FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             LEFT JOIN pg_class c ON c.oid = t.typrelid
             WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\_%'
               AND (t.typtype = 'e' OR c.relkind = 'c') LOOP
        EXECUTE format('DROP TYPE %I CASCADE', r.typname);
    END LOOP;
END $$;
"""


def _execute_script(sql: str) -> None:
    """Run a multi-statement script: asyncpg prepares statements one at a time, so the
    script goes through the driver's simple query protocol instead."""
    dbapi_connection = op.get_bind().connection.dbapi_connection
    assert dbapi_connection is not None
    dbapi_connection.run_async(lambda driver: driver.execute(sql))  # type: ignore[attr-defined]


def upgrade() -> None:
    _execute_script(SchemaManager.get_schema())

    op.create_table(
        "ingestion_jobs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.Text(), server_default="queued", nullable=False),
        sa.Column(
            "options",
            postgresql.JSONB(),
            nullable=False,
            comment="chunk_size, chunk_overlap and metadata of the upload.",
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("units_parsed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("chunks_made", sa.Integer(), server_default="0", nullable=False),
        sa.Column("chunks_embedded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("chunks_stored", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed')",
            name=op.f("ck_ingestion_jobs_state"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_ingestion_jobs_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_jobs")),
        comment="Background processing of an upload, with its progress.",
    )
    op.create_index("ix_ingestion_jobs_document_id", "ingestion_jobs", ["document_id"])

    op.create_table(
        "document_files",
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_files_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", "part", name=op.f("pk_document_files")),
        comment="Uploaded bytes of documents waiting to be processed (or failed, for a "
        "retry), 1 MiB per row; removed once the document is completed.",
    )


def downgrade() -> None:
    op.drop_table("document_files")
    op.drop_index("ix_ingestion_jobs_document_id", table_name="ingestion_jobs")
    op.drop_table("ingestion_jobs")
    op.execute(DROP_PROCRASTINATE)
