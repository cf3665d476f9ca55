"""Initial schema: collections, documents, chunks with embeddings, and the processing cache.

The embedding dimension and the text-search language come from the settings at
the time this runs (RAGSTORE_EMBEDDING_MODEL / _DIMENSIONS /
_TEXT_SEARCH_CONFIG) and are recorded in `embedding_space`; ragstore refuses to
start later with a model of another dimension.

Revision ID: 0001_initial_schema
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

from app.core.config import Settings

revision: str = "0001_initial_schema"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


EMBEDDING_COMMENT = "Embedding of text; its model and dimension are in embedding_space."


def _settings() -> Settings:
    settings = op.get_context().config.attributes["settings"]
    assert isinstance(settings, Settings)
    return settings


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _metadata(comment: str) -> sa.Column:
    return sa.Column(
        "metadata",
        postgresql.JSONB(),
        server_default=sa.text("'{}'::jsonb"),
        nullable=False,
        comment=comment,
    )


def upgrade() -> None:
    settings = _settings()
    dimensions = settings.embedding_dimensions
    language = settings.text_search_config

    op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    op.create_table(
        "embedding_space",
        sa.Column("singleton", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("text_search_config", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("singleton", name=op.f("ck_embedding_space_one_row")),
        sa.PrimaryKeyConstraint("singleton", name=op.f("pk_embedding_space")),
        comment="The embedding model and dimension of every vector in this database.",
    )
    op.execute(
        sa.text(
            "INSERT INTO embedding_space (provider, model, dimensions, text_search_config) "
            "VALUES (:provider, :model, :dimensions, :language)"
        ).bindparams(
            provider=settings.embedding_provider,
            model=settings.embedding_model,
            dimensions=dimensions,
            language=language,
        )
    )

    op.create_table(
        "collections",
        sa.Column(
            "id", sa.Text(), server_default=sa.text("gen_random_uuid()::text"), nullable=False
        ),
        sa.Column("name", sa.Text(), nullable=False),
        _metadata("User metadata (OpenAI: metadata)."),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        comment="A named set of documents searched together "
        "(the original app's session; an OpenAI vector store).",
    )

    op.create_table(
        "documents",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("collection_id", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "content_sha256",
            sa.Text(),
            nullable=False,
            comment="Hex SHA-256 of the uploaded bytes.",
        ),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("error", sa.Text(), nullable=True, comment="Why processing failed."),
        sa.Column("chunk_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap", sa.Integer(), nullable=False),
        sa.Column(
            "cache_key",
            sa.Text(),
            nullable=False,
            comment="The processed_documents key of this content and processing parameters.",
        ),
        _metadata("User metadata given at upload (OpenAI: attributes)."),
        *_timestamps(),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_documents_status"),
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_documents_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint(
            "collection_id", "filename", name=op.f("uq_documents_collection_id_filename")
        ),
        comment="An uploaded file (OpenAI: a vector store file).",
    )

    op.create_table(
        "chunks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column(
            "collection_id",
            sa.Text(),
            nullable=False,
            comment="Copied from the document so a search filters without a join.",
        ),
        sa.Column(
            "chunk_index",
            sa.Integer(),
            nullable=False,
            comment="Position of the chunk in its document, from 0.",
        ),
        sa.Column("text", sa.Text(), nullable=False),
        _metadata("filename, chunk_index, upload_time, page, section, rows and user metadata."),
        sa.Column(
            "embedding",
            Vector(dimensions),
            nullable=False,
            comment=EMBEDDING_COMMENT,
        ),
        sa.Column(
            "text_search",
            postgresql.TSVECTOR(),
            sa.Computed(f"to_tsvector('{language}'::regconfig, text)", persisted=True),
            nullable=True,
            comment="Keyword index of text, generated by PostgreSQL.",
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_chunks_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_chunks_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chunks")),
        sa.UniqueConstraint(
            "document_id", "chunk_index", name=op.f("uq_chunks_document_id_chunk_index")
        ),
        comment="A piece of a document's text with its embedding.",
    )
    op.create_index("ix_chunks_collection_id", "chunks", ["collection_id"])
    # pgvector's HNSW index takes at most 2,000 dimensions of `vector`: past that (allowed
    # since issue 17) it holds half-precision copies until 0011 quantizes it. Up to 2,000
    # this is the index this revision always built.
    indexed = (
        f"(embedding::halfvec({dimensions})) halfvec_cosine_ops"
        if dimensions > 2000
        else "embedding vector_cosine_ops"
    )
    op.execute(f"CREATE INDEX ix_chunks_embedding_hnsw ON chunks USING hnsw ({indexed})")
    op.create_index("ix_chunks_text_search", "chunks", ["text_search"], postgresql_using="gin")

    op.create_table(
        "processed_documents",
        sa.Column(
            "cache_key",
            sa.Text(),
            nullable=False,
            comment="SHA-256 of content_sha256, chunk_size, chunk_overlap and embedding_model.",
        ),
        sa.Column("content_sha256", sa.Text(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.Text(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "last_used_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("cache_key", name=op.f("pk_processed_documents")),
        comment="Cache of parsed and embedded content, so the same bytes with the "
        "same processing parameters are never parsed or embedded twice.",
    )
    op.create_index("ix_processed_documents_last_used_at", "processed_documents", ["last_used_at"])

    op.create_table(
        "processed_chunks",
        sa.Column("cache_key", sa.Text(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _metadata("page, section, rows."),
        sa.Column(
            "embedding",
            Vector(dimensions),
            nullable=False,
            comment=EMBEDDING_COMMENT,
        ),
        sa.ForeignKeyConstraint(
            ["cache_key"],
            ["processed_documents.cache_key"],
            name=op.f("fk_processed_chunks_cache_key_processed_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cache_key", "chunk_index", name=op.f("pk_processed_chunks")),
        comment="The chunks and embeddings of a processed_documents entry.",
    )


def downgrade() -> None:
    op.drop_table("processed_chunks")
    op.drop_index("ix_processed_documents_last_used_at", table_name="processed_documents")
    op.drop_table("processed_documents")
    op.drop_index("ix_chunks_text_search", table_name="chunks")
    op.drop_index("ix_chunks_embedding_hnsw", table_name="chunks")
    op.drop_index("ix_chunks_collection_id", table_name="chunks")
    op.drop_table("chunks")
    op.drop_table("documents")
    op.drop_table("collections")
    op.drop_table("embedding_space")
    # The vector extension stays: other schemas in this database may use it.
