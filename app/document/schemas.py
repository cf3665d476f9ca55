import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.db.models import DocumentSource, DocumentStatus, JobState


class LatestJob(BaseModel):
    """The document's most recent background job."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    state: JobState
    error: str | None
    finished_at: datetime | None


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: uuid.UUID
    collection_id: str
    filename: str
    source: DocumentSource = Field(
        description="upload: a file; texts: texts inserted through the Python API, "
        "which have no file, hash or chunking parameters."
    )
    content_type: str
    size_bytes: int
    content_sha256: str | None = Field(description="Of the uploaded bytes (null for texts).")
    status: DocumentStatus
    error: str | None
    retryable: bool | None = Field(
        description="For a failed document: true when a retry can fix it (the model provider "
        "failed), false when the file itself cannot be processed; null otherwise."
    )
    latest_job: LatestJob | None = Field(
        default=None, description="Its most recent background job, if it had one."
    )
    chunk_count: int
    chunk_size: int | None
    chunk_overlap: int | None
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    created_at: datetime
    updated_at: datetime


class DocumentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, Any] = Field(
        description="Replaces the document's metadata, and its copy in every chunk (so "
        "filters see it at once); nothing is embedded again."
    )


class DocumentUploaded(DocumentRead):
    already_processed: bool = Field(
        description="The same content with the same parameters was already in this collection."
    )
    metadata_updated: bool = Field(
        default=False,
        description="It was already processed, and this upload's metadata replaced the old.",
    )
    job_id: uuid.UUID | None = Field(
        default=None, description="The background job processing it (asynchronous uploads)."
    )


class DocumentPage(BaseModel):
    data: list[DocumentRead]
    total: int
    limit: int
    offset: int


class ChunkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: int
    chunk_index: int
    text: str
    metadata: dict[str, Any] = Field(validation_alias="metadata_")


class ChunkPage(BaseModel):
    data: list[ChunkRead]
    total: int
    limit: int
    offset: int
