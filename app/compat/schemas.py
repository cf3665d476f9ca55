"""Response shapes of the original app, kept field for field (new fields only added)."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.llm.client import RequestApiKey
from app.search.schemas import SearchRequest


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


class ChatRequest(BaseModel):
    """The original app's `/api/chat` body, plus an optional session to answer from."""

    developer_message: str = Field(description="Instructions for the model (the system prompt).")
    user_message: str = Field(description="The user's message.")
    model: str | None = Field(
        default=None, description="Chat model; RAGSTORE_DEFAULT_CHAT_MODEL when omitted."
    )
    api_key: RequestApiKey | None = Field(
        default=None,
        description="OpenAI API key for this request; OPENAI_API_KEY on the server when omitted. "
        "Never stored or logged.",
    )
    session_id: str | None = Field(
        default=None,
        description="Answer from this collection's documents (retrieval-augmented).",
    )


class RagChatRequest(BaseModel):
    """The original app's `/api/rag-chat` body."""

    user_message: str = Field(min_length=1, description="The question.")
    session_id: str = Field(min_length=1, description="The collection to answer from.")
    model: str | None = Field(
        default=None, description="Chat model; RAGSTORE_DEFAULT_CHAT_MODEL when omitted."
    )
    api_key: RequestApiKey | None = Field(
        default=None, description="OpenAI API key for this request."
    )
    use_rag: bool = Field(
        default=True, description="False: a plain chat answer, without the documents."
    )


class CollectionSearchRequest(SearchRequest):
    # The original routes stay lenient: fields they do not know are ignored.
    model_config = ConfigDict(extra="ignore")

    session_id: str = Field(
        min_length=1, description="The collection (the original app's session) to search."
    )
