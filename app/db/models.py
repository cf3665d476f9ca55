"""The tables. The first migration creates exactly these; a test keeps them in step.

Vocabulary: a *collection* is what the original app called a session and what
OpenAI calls a vector store; a *document* is an uploaded file; a *chunk* is a
piece of a document's text with its embedding.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, REAL, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import PgVector


class DocumentStatus(StrEnum):
    """Where a document is in its life: stored, being processed, searchable, or failed."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class DocumentSource(StrEnum):
    """What a document holds: an uploaded file, or texts inserted through the Python API."""

    UPLOAD = "upload"
    # No file behind it: no content hash, cache key or chunking parameters.
    TEXTS = "texts"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Its document (or collection) was deleted.
    CANCELLED = "cancelled"
    # A newer upload or retry of its document took its place.
    SUPERSEDED = "superseded"


ACTIVE_JOB_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})
FINISHED_JOB_STATES = frozenset(JobState) - ACTIVE_JOB_STATES


class CacheState(StrEnum):
    """A processed-document cache entry is built slice by slice, then complete."""

    BUILDING = "building"
    COMPLETE = "complete"


def _one_of(column: str, states: type[StrEnum]) -> str:
    """The CHECK that keeps `column` to the enum's values (the enum is the one definition)."""
    return f"{column} IN ({', '.join(repr(state.value) for state in states)})"


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated_at() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def _metadata_column(comment: str) -> Mapped[dict[str, Any]]:
    return mapped_column(
        "metadata", JSONB, server_default=text("'{}'::jsonb"), nullable=False, comment=comment
    )


class EmbeddingSpace(Base):
    """The single embedding model every stored vector comes from."""

    __tablename__ = "embedding_space"
    __table_args__ = (
        CheckConstraint("singleton", name="one_row"),
        {"comment": "The embedding model and dimension of every vector in this database."},
    )

    singleton: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    provider: Mapped[str] = mapped_column(Text, nullable=False)
    model: Mapped[str] = mapped_column(Text, nullable=False)
    dimensions: Mapped[int] = mapped_column(Integer, nullable=False)
    text_search_config: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created_at()


class Collection(Base):
    __tablename__ = "collections"
    __table_args__ = (
        CheckConstraint("expires_after_days BETWEEN 1 AND 365", name="expires_after_days"),
        {
            "comment": "A named set of documents searched together "
            "(the original app's session; an OpenAI vector store)."
        },
    )

    # Text, not UUID: the original clients may choose their own session ids.
    id: Mapped[str] = mapped_column(
        Text, primary_key=True, server_default=text("gen_random_uuid()::text")
    )
    name: Mapped[str] = mapped_column(Text, nullable=False)
    metadata_: Mapped[dict[str, Any]] = _metadata_column("User metadata (OpenAI: metadata).")
    description: Mapped[str | None] = mapped_column(Text, comment="OpenAI: description.")
    expires_after_days: Mapped[int | None] = mapped_column(
        Integer, comment="OpenAI: expires_after.days, counted from the last activity."
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("collection_id", "filename"),
        CheckConstraint(_one_of("status", DocumentStatus), name="status"),
        CheckConstraint(_one_of("source", DocumentSource), name="source"),
        CheckConstraint(
            "(source = 'texts') = (content_sha256 IS NULL AND cache_key IS NULL "
            "AND chunk_size IS NULL AND chunk_overlap IS NULL)",
            name="upload_fields",
        ),
        CheckConstraint("source = 'upload' OR status = 'completed'", name="texts_completed"),
        CheckConstraint(
            "(status = 'failed') = (retryable IS NOT NULL)", name="retryable_when_failed"
        ),
        # A stored file is in a collection at most once.
        Index(
            "uq_documents_collection_id_file_id",
            "collection_id",
            "file_id",
            unique=True,
            postgresql_where=text("file_id IS NOT NULL"),
        ),
        Index("ix_documents_file_id", "file_id", postgresql_where=text("file_id IS NOT NULL")),
        {"comment": "An uploaded file (OpenAI: a vector store file), or inserted texts."},
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    collection_id: Mapped[str] = mapped_column(
        Text, ForeignKey("collections.id", ondelete="CASCADE"), nullable=False
    )
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(Text, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    source: Mapped[str] = mapped_column(
        Text,
        nullable=False,
        server_default=DocumentSource.UPLOAD.value,
        comment="upload: a file; texts: texts inserted through the Python API.",
    )
    content_sha256: Mapped[str | None] = mapped_column(
        Text, comment="Hex SHA-256 of the uploaded bytes."
    )
    status: Mapped[str] = mapped_column(
        Text, nullable=False, server_default=DocumentStatus.PENDING.value
    )
    error: Mapped[str | None] = mapped_column(Text, comment="Why processing failed.")
    retryable: Mapped[bool | None] = mapped_column(
        Boolean,
        comment="For a failed document: whether a retry can fix it (the provider failed), "
        "or not (the file itself cannot be processed).",
    )
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    chunk_size: Mapped[int | None] = mapped_column(Integer)
    chunk_overlap: Mapped[int | None] = mapped_column(Integer)
    cache_key: Mapped[str | None] = mapped_column(
        Text,
        comment="The processed_documents key of this content and processing parameters.",
    )
    generation: Mapped[int] = mapped_column(
        Integer,
        nullable=False,
        server_default="1",
        comment="The current version: raised by every committed or accepted upload and "
        "every retry; work for an older generation is discarded.",
    )
    metadata_: Mapped[dict[str, Any]] = _metadata_column(
        "User metadata given at upload (OpenAI: attributes)."
    )
    file_id: Mapped[str | None] = mapped_column(
        Text,
        ForeignKey("files.id", ondelete="CASCADE"),
        comment="The stored file this document was made from (OpenAI: the vector store "
        "file's id), when it came through the Files API.",
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


def _embedding_column(dimensions: int | None) -> Mapped[Any]:
    # The dimension is fixed per database by the first migration (it follows
    # the configured embedding model and is recorded in embedding_space).
    return mapped_column(
        PgVector(dimensions),
        nullable=False,
        comment="Embedding of text; its model and dimension are in embedding_space.",
    )


# Chunk's column `text` hides sqlalchemy.text inside its class body.
SQL_TRUE = text("true")


class Chunk(Base):
    """Partitioned by collection (migration 0012): each collection's chunks are a table of
    their own, `chunk_partition_name(collection_id)`, made when its first chunks are written
    (app/document/partitions.py) with its own HNSW index, which is why none is declared here:
    an index on the parent would be built again at every attach."""

    __tablename__ = "chunks"
    __table_args__ = (
        UniqueConstraint("document_id", "chunk_index", "collection_id"),
        Index("ix_chunks_text_search", "text_search", postgresql_using="gin"),
        # Serves the containment (@>) that eq and in filters compile to.
        Index(
            "ix_chunks_metadata",
            "metadata",
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        ),
        # A collection's chunks not yet in its HNSW graph (migration 0014), which a vector
        # search scans beside the graph.
        Index("ix_chunks_graph_pending", "collection_id", postgresql_where=text("NOT in_graph")),
        {
            "comment": "A piece of a document's text with its embedding; one partition per "
            "collection (chunk_partition_name).",
            "postgresql_partition_by": "LIST (collection_id)",
        },
    )

    # A sequence, not an identity: PostgreSQL 14-16 take no identity on a partitioned table.
    id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, server_default=text("nextval('chunks_id_seq'::regclass)")
    )
    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    # In the primary key because a partitioned table's keys must hold its partition key.
    collection_id: Mapped[str] = mapped_column(
        Text,
        ForeignKey("collections.id", ondelete="CASCADE"),
        primary_key=True,
        comment="Copied from the document so a search filters without a join; the partition key.",
    )
    chunk_index: Mapped[int] = mapped_column(
        Integer, nullable=False, comment="Position of the chunk in its document, from 0."
    )
    text: Mapped[str] = mapped_column(Text, nullable=False)
    metadata_: Mapped[dict[str, Any]] = _metadata_column(
        "filename, chunk_index, upload_time, page, section, rows and user metadata."
    )
    embedding: Mapped[Any] = _embedding_column(None)
    text_search: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed("to_tsvector('english'::regconfig, text)", persisted=True),
        comment="Keyword index of text, generated by PostgreSQL.",
    )
    # The partition's HNSW index holds the chunks `WHERE in_graph` (app/document/index_builds.py).
    in_graph: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        server_default=SQL_TRUE,
        comment="Whether the chunk is in its collection's HNSW graph yet; false for a moment "
        "after a write into an indexed collection.",
    )


class KeywordCollection(Base):
    """BM25 statistics of a collection; kept by triggers on chunks (migration 0007)."""

    __tablename__ = "keyword_collections"
    __table_args__ = (
        CheckConstraint("chunk_count >= 0", name="chunk_count"),
        CheckConstraint("total_length >= 0", name="total_length"),
        {"comment": "BM25 statistics of a collection: its chunks and their total length in words."},
    )

    collection_id: Mapped[str] = mapped_column(
        Text, ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total_length: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # Its BM25 postings' partition (migration 0017): 4 bytes in every posting, where the id
    # took 37 (a UUID) in the row and in both of its indexes.
    postings_key: Mapped[int] = mapped_column(
        Integer,
        Identity(),
        unique=True,
        nullable=False,
        comment="The key of the collection's BM25 postings: their partition of "
        "keyword_postings; never reused.",
    )
    # A collection's first chunks are indexed after their upload answers (migration 0015).
    deferred: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        server_default=false(),
        comment="Whether the collection's keyword index waits for keyword_index_build: true "
        "for a moment after its first chunks are written.",
    )


class KeywordTerm(Base):
    """A word of a collection with its document frequency; kept by triggers on chunks."""

    __tablename__ = "keyword_terms"
    __table_args__ = (
        UniqueConstraint("collection_id", "term"),
        CheckConstraint("document_frequency > 0", name="document_frequency"),
        {
            "comment": "A word (lexeme of chunks.text_search) of a collection and how many "
            "chunks hold it."
        },
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    # No foreign key (migration 0013): a check per new word; the triggers remove the words
    # of a collection's chunks with them.
    collection_id: Mapped[str] = mapped_column(Text, nullable=False)
    term: Mapped[str] = mapped_column(Text, nullable=False)
    document_frequency: Mapped[int] = mapped_column(Integer, nullable=False)


class KeywordPosting(Base):
    """A word in a chunk. No foreign keys: the triggers remove a chunk's postings by id.

    Partitioned by collection (migrations 0016 and 0017): a collection's postings are a table
    of their own, `keyword_partition_name(postings_key)`, whose primary key (chunk_id,
    term_id) is that table's alone.
    """

    __tablename__ = "keyword_postings"
    __table_args__ = (
        Index(
            "ix_keyword_postings_term_id_impact",
            "term_id",
            text("impact DESC"),
            # Everything a word's postings are scored with: scans of it are index-only.
            # postings_key too: every read names it (one partition), and an index-only
            # scan checks it from the index (migration 0016). In this order an entry has
            # no padding (migration 0017).
            postgresql_include=["term_frequency", "chunk_id", "chunk_length", "postings_key"],
        ),
        {
            "comment": "A word in a chunk: its frequency, the chunk's length and its BM25 "
            "weight without IDF; one partition per collection "
            "(keyword_partition_name(keyword_collections.postings_key)).",
            "postgresql_partition_by": "LIST (postings_key)",
        },
    )
    # Each partition's primary key, to the ORM (the partitioned table has none).
    __mapper_args__ = {"primary_key": ["chunk_id", "term_id"]}

    chunk_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    term_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    term_frequency: Mapped[int] = mapped_column(Integer, nullable=False)
    chunk_length: Mapped[int] = mapped_column(Integer, nullable=False)
    impact: Mapped[float] = mapped_column(REAL, nullable=False)
    # The partition key (keyword_collections.postings_key): every read of postings names
    # it, so it reads one table. Last, in the row's padding after `impact`.
    postings_key: Mapped[int] = mapped_column(Integer, nullable=False)


class ProcessedDocument(Base):
    __tablename__ = "processed_documents"
    __table_args__ = (
        Index("ix_processed_documents_last_used_at", "last_used_at"),
        CheckConstraint(_one_of("state", CacheState), name="state"),
        {
            "comment": "Cache of parsed and embedded content, so the same bytes with the "
            "same processing parameters are never parsed or embedded twice."
        },
    )

    cache_key: Mapped[str] = mapped_column(
        Text,
        primary_key=True,
        comment="SHA-256 of content_sha256, chunk_size, chunk_overlap and embedding_model.",
    )
    content_sha256: Mapped[str] = mapped_column(Text, nullable=False)
    chunk_size: Mapped[int] = mapped_column(Integer, nullable=False)
    chunk_overlap: Mapped[int] = mapped_column(Integer, nullable=False)
    embedding_model: Mapped[str] = mapped_column(Text, nullable=False)
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = _created_at()
    last_used_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    state: Mapped[str] = mapped_column(
        Text,
        nullable=False,
        server_default=CacheState.COMPLETE.value,
        comment="building while its chunks are stored batch by batch; complete after.",
    )
    builder_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), comment="The upload building this entry (while building)."
    )
    lease_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="A building entry's builder renews this; past it, another may take over.",
    )


class ProcessedChunk(Base):
    __tablename__ = "processed_chunks"
    __table_args__ = {"comment": "The chunks and embeddings of a processed_documents entry."}

    cache_key: Mapped[str] = mapped_column(
        Text, ForeignKey("processed_documents.cache_key", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    metadata_: Mapped[dict[str, Any]] = _metadata_column("page, section, rows.")
    embedding: Mapped[Any] = _embedding_column(None)


class IngestionJob(Base):
    __tablename__ = "ingestion_jobs"
    __table_args__ = (
        CheckConstraint(_one_of("state", JobState), name="state"),
        Index("ix_ingestion_jobs_document_id", "document_id"),
        Index(
            "ix_ingestion_jobs_collection_id_created_at", "collection_id", text("created_at DESC")
        ),
        {"comment": "Background processing of an upload, with its progress."},
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    # NULL once the document is deleted: the job stays, ended `cancelled` (a trigger).
    document_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="SET NULL")
    )
    generation: Mapped[int] = mapped_column(
        Integer,
        nullable=False,
        server_default="1",
        comment="The document generation this job processes.",
    )
    collection_id: Mapped[str | None] = mapped_column(
        Text, comment="The collection its upload went to (kept after a delete)."
    )
    filename: Mapped[str | None] = mapped_column(
        Text, comment="The file name of its upload (kept after a delete)."
    )
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default=JobState.QUEUED.value)
    options: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, comment="chunk_size, chunk_overlap and metadata of the upload."
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    units_parsed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    chunks_made: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    chunks_embedded: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    chunks_stored: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DocumentFile(Base):
    """Kept in PostgreSQL so that a worker on any machine can read it."""

    __tablename__ = "document_files"
    __table_args__ = {
        "comment": "Uploaded bytes of documents waiting to be processed (or failed, for a "
        "retry), 1 MiB per row; removed once the document is completed."
    }

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class StoredFile(Base):
    """A file as it was uploaded through the Files API; documents are made from it."""

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_created_at_id", "created_at", "id"),
        {"comment": "An uploaded file, kept as sent (OpenAI: a file object)."},
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    content_sha256: Mapped[str] = mapped_column(
        Text, nullable=False, comment="Hex SHA-256 of the bytes."
    )
    created_at: Mapped[datetime] = _created_at()


class FilePart(Base):
    __tablename__ = "file_parts"
    __table_args__ = {"comment": "The bytes of a stored file, 1 MiB per row."}

    file_id: Mapped[str] = mapped_column(
        Text, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class FileBatch(Base):
    __tablename__ = "file_batches"
    __table_args__ = (
        Index("ix_file_batches_collection_id", "collection_id"),
        {"comment": "Files added to a collection together (OpenAI: a vector store file batch)."},
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    collection_id: Mapped[str] = mapped_column(
        Text, ForeignKey("collections.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = _created_at()
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FileBatchFile(Base):
    __tablename__ = "file_batch_files"
    __table_args__ = (
        Index("ix_file_batch_files_file_id", "file_id"),
        {"comment": "A file of a file batch."},
    )

    batch_id: Mapped[str] = mapped_column(
        Text, ForeignKey("file_batches.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[str] = mapped_column(
        Text, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    cancelled: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        server_default=false(),
        comment="Cancelling the batch stopped this file before it was processed.",
    )
