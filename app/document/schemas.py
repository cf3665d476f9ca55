import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.db.models import DocumentStatus


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: uuid.UUID
    collection_id: str
    filename: str
    content_type: str
    size_bytes: int
    content_sha256: str
    status: DocumentStatus
    error: str | None
    chunk_count: int
    chunk_size: int
    chunk_overlap: int
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    created_at: datetime
    updated_at: datetime


class DocumentUploaded(DocumentRead):
    already_processed: bool = Field(
        description="The same content with the same parameters was already in this collection."
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
