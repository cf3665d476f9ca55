"""Response shapes of the original app, kept field for field (new fields only added)."""

import uuid
from datetime import datetime

from pydantic import BaseModel


class UploadResponse(BaseModel):
    success: bool
    message: str
    session_id: str
    document_count: int
    filename: str
    document_id: uuid.UUID
    chunk_count: int
    status: str
    job_id: uuid.UUID | None = None


class SessionInfo(BaseModel):
    session_id: str
    document_count: int
    documents: list[str]
    created_at: datetime


class SessionList(BaseModel):
    total_sessions: int
    sessions: list[SessionInfo]


class SessionDeleted(BaseModel):
    success: bool
    message: str


class DocumentDeleted(BaseModel):
    success: bool
    message: str
    remaining_documents: list[str]
    document_count: int
