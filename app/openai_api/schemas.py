"""OpenAI's Files and Vector Stores objects, as ragstore's rows look through them.

The shapes follow openai-python's types (`openai.types.FileObject`,
`VectorStore`, `vector_stores.VectorStoreFile`, `VectorStoreSearchResponse`);
tests parse every answer with those types. Mapping: a vector store is a
collection, a file a stored upload, a vector store file a document, its
attributes the document's metadata.
"""

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.db.models import Collection, Document, DocumentStatus, FileBatch, StoredFile
from app.db.repository import Cursor
from app.document.metadata import CHUNK_KEYS
from app.processing.detection import UNSUPPORTED_FILE_TYPE
from app.search.filters import FilterInput

# OpenAI's limits on a vector store's metadata and a file's attributes.
MetadataKey = Annotated[str, StringConstraints(max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)]
Attributes = Annotated[dict[MetadataKey, str | float | bool], Field(max_length=16)]

# Chunking is counted in tokens, as OpenAI's is; ragstore's splitter counts characters,
# at 4 characters a token (OpenAI's own rule of thumb for English text), so no tokenizer
# has to be downloaded.
CHARACTERS_PER_TOKEN = 4
AUTO_CHUNK_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400


def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, server_error...")
    param: str | None = Field(description="The parameter at fault, when one is.")
    code: str | None


class OpenAIErrorResponse(BaseModel):
    """The body of every error answer under /v1 (OpenAI's), so the SDK raises its own
    exception classes."""

    error: OpenAIErrorDetail


OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorResponse, "description": description}
    for status, description in {
        400: "The request does not match the schema (`param` names the field)",
        401: "No API key, or a wrong one (when RAGSTORE_API_KEYS is set)",
        404: "No such file or vector store",
        409: "The store already holds a file of that name, or the file is still processing",
        413: "The file is larger than the upload limit",
        422: "Content refused: attributes or metadata ragstore cannot keep",
    }.items()
}


class Request(BaseModel):
    """Bodies refuse unknown fields, so a misspelt option is an error, not a default."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(BaseModel):
    """OpenAI's list parameters: `limit` objects from just `after` (or up to `before`) an
    object's id, newest first unless `order` is `asc`."""

    limit: int = Field(default=20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None

    def cursor(self) -> Cursor:
        descending = self.order == "desc"
        return Cursor(self.limit, descending, after=self.after, before=self.before)


class StaticChunking(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> "StaticChunking":
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class ChunkingStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["auto", "static"]
    static: StaticChunking | None = None

    @model_validator(mode="after")
    def _static_has_sizes(self) -> "ChunkingStrategy":
        if self.type == "static" and self.static is None:
            raise ValueError("a static chunking_strategy needs `static`")
        return self

    def tokens(self) -> tuple[int, int]:
        if self.static is None:
            return AUTO_CHUNK_TOKENS, AUTO_OVERLAP_TOKENS
        return self.static.max_chunk_size_tokens, self.static.chunk_overlap_tokens

    def characters(self) -> tuple[int, int]:
        size, overlap = self.tokens()
        return size * CHARACTERS_PER_TOKEN, overlap * CHARACTERS_PER_TOKEN


def chunking_of(document: Document) -> dict[str, Any]:
    """How the document was chunked, in OpenAI's terms (tokens)."""
    size = (document.chunk_size or 0) // CHARACTERS_PER_TOKEN
    overlap = (document.chunk_overlap or 0) // CHARACTERS_PER_TOKEN
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
    }


class ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anchor: Literal["last_active_at"] = "last_active_at"
    days: int = Field(ge=1, le=365)


class VectorStoreCreate(Request):
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None
    expires_after: ExpiresAfter | None = None


class VectorStoreUpdate(Request):
    name: str | None = Field(default=None, max_length=256)
    metadata: Metadata | None = None
    expires_after: ExpiresAfter | None = None


class VectorStoreFileCreate(Request):
    file_id: str
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class BatchFile(Request):
    file_id: str
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class FileBatchCreate(Request):
    """`file_ids` (all with the batch's `attributes` and `chunking_strategy`), or `files`,
    each with its own."""

    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    files: list[BatchFile] | None = Field(default=None, min_length=1, max_length=500)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None

    @model_validator(mode="after")
    def _one_list(self) -> "FileBatchCreate":
        if (self.file_ids is None) == (self.files is None):
            raise ValueError("give either file_ids or files")
        return self

    def each(self) -> list[BatchFile]:
        if self.files is not None:
            return self.files
        assert self.file_ids is not None
        return [
            BatchFile(
                file_id=file_id,
                attributes=self.attributes,
                chunking_strategy=self.chunking_strategy,
            )
            for file_id in self.file_ids
        ]


class VectorStoreFileUpdate(Request):
    attributes: Attributes


class RankingOptions(Request):
    ranker: Literal["auto", "default-2024-11-15", "none"] = "auto"
    score_threshold: float = Field(default=0.0, ge=0, le=1)


class VectorStoreSearch(Request):
    query: str | list[str]
    filters: FilterInput | None = None
    max_num_results: int = Field(default=10, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False

    def text(self) -> str:
        """One text to search for: a list of queries is searched as one."""
        return self.query if isinstance(self.query, str) else " ".join(self.query)


class FileCounts(BaseModel):
    in_progress: int
    completed: int
    failed: int
    cancelled: int
    total: int


class VectorStoreObject(BaseModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    description: str | None
    usage_bytes: int
    file_counts: FileCounts
    status: Literal["expired", "in_progress", "completed"]
    last_active_at: int | None
    metadata: dict[str, Any]
    expires_after: ExpiresAfter | None
    expires_at: int | None

    @classmethod
    def of(cls, collection: Collection, counts: dict[str, int]) -> "VectorStoreObject":
        counted = file_counts(counts)
        last_active = unix(collection.updated_at) or 0
        days = collection.expires_after_days
        expires_at = None if days is None else last_active + days * 86_400
        expired = expires_at is not None and expires_at < time.time()
        return cls(
            id=collection.id,
            created_at=unix(collection.created_at) or 0,
            name=collection.name,
            description=collection.description,
            usage_bytes=counts.get("bytes", 0),
            file_counts=counted,
            status="expired"
            if expired
            else ("in_progress" if counted.in_progress else "completed"),
            last_active_at=last_active,
            metadata=collection.metadata_,
            expires_after=None if days is None else ExpiresAfter(days=days),
            expires_at=expires_at,
        )


def file_counts(by_status: Mapping[str, int], cancelled: int = 0) -> FileCounts:
    """Counts of files by their documents' statuses (and the files a cancel stopped)."""
    in_progress = by_status.get(DocumentStatus.PENDING, 0) + by_status.get(
        DocumentStatus.PROCESSING, 0
    )
    completed = by_status.get(DocumentStatus.COMPLETED, 0)
    failed = by_status.get(DocumentStatus.FAILED, 0)
    return FileCounts(
        in_progress=in_progress,
        completed=completed,
        failed=failed,
        cancelled=cancelled,
        total=in_progress + completed + failed + cancelled,
    )


class FileBatchObject(BaseModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    file_counts: FileCounts

    @classmethod
    def of(cls, batch: FileBatch, counts: FileCounts) -> "FileBatchObject":
        if counts.in_progress:
            status: Literal["in_progress", "completed", "cancelled", "failed"] = "in_progress"
        elif batch.cancelled_at is not None:
            status = "cancelled"
        else:
            status = "completed"
        return cls(
            id=batch.id,
            created_at=unix(batch.created_at) or 0,
            vector_store_id=batch.collection_id,
            status=status,
            file_counts=counts,
        )


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None

    @classmethod
    def of(cls, stored: StoredFile) -> "FileObject":
        return cls(
            id=stored.id,
            bytes=stored.size_bytes,
            created_at=unix(stored.created_at) or 0,
            filename=stored.filename,
            purpose=stored.purpose,
        )


class LastError(BaseModel):
    code: Literal["server_error", "unsupported_file", "invalid_file"]
    message: str

    @classmethod
    def of(cls, document: Document) -> "LastError | None":
        if document.status != DocumentStatus.FAILED:
            return None
        message = document.error or "processing failed"
        if document.retryable:
            code: Literal["server_error", "unsupported_file", "invalid_file"] = "server_error"
        elif message.startswith(UNSUPPORTED_FILE_TYPE):
            code = "unsupported_file"
        else:
            code = "invalid_file"
        return cls(code=code, message=message)


_STATUSES: dict[str, Literal["in_progress", "completed", "failed"]] = {
    DocumentStatus.PENDING: "in_progress",
    DocumentStatus.PROCESSING: "in_progress",
    DocumentStatus.COMPLETED: "completed",
    DocumentStatus.FAILED: "failed",
}
FILE_FILTERS: dict[str, list[str]] = {
    "in_progress": [DocumentStatus.PENDING, DocumentStatus.PROCESSING],
    "completed": [DocumentStatus.COMPLETED],
    "failed": [DocumentStatus.FAILED],
    "cancelled": [],
}


def public_id(document: Document) -> str:
    """A vector store file's id: its stored file's, or for a document uploaded another
    way, `file-` and the document's id."""
    return document.file_id or f"file-{document.id.hex}"


def attributes_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """A file's attributes: its document's metadata, without the keys ragstore sets on
    every chunk."""
    return {key: value for key, value in metadata.items() if key not in CHUNK_KEYS}


class VectorStoreFileObject(BaseModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    last_error: LastError | None
    usage_bytes: int
    attributes: dict[str, Any]
    chunking_strategy: dict[str, Any]

    @classmethod
    def of(cls, document: Document) -> "VectorStoreFileObject":
        return cls(
            id=public_id(document),
            created_at=unix(document.created_at) or 0,
            vector_store_id=document.collection_id,
            status=_STATUSES[document.status],
            last_error=LastError.of(document),
            usage_bytes=document.size_bytes,
            attributes=attributes_of(document.metadata_),
            chunking_strategy=chunking_of(document),
        )


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool = True


class ListPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[Any]
    first_id: str | None
    last_id: str | None
    has_more: bool

    @classmethod
    def of(cls, data: list[Any], has_more: bool) -> "ListPage":
        return cls(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=has_more,
        )


class TextContent(BaseModel):
    type: Literal["text"] = "text"
    text: str


class SearchResultObject(BaseModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any]
    content: list[TextContent]


class SearchResultsPage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: str | list[str]
    data: list[SearchResultObject]
    has_more: bool = False
    next_page: str | None = None


class FileContentPage(BaseModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[TextContent]
    has_more: bool = False
    next_page: str | None = None
