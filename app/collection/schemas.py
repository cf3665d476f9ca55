from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

COLLECTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(
        default=None,
        pattern=COLLECTION_ID_PATTERN,
        description="Choose the id (letters, digits, `._:-`); a UUID is generated when omitted.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class CollectionUpdate(BaseModel):
    """What a PATCH changes; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = Field(
        default=None, description="Replaces the collection's metadata."
    )


class CollectionIndexing(BaseModel):
    """Whether every chunk is already in the collection's indexes. Searches find every
    chunk either way, with the same keyword scores: for a moment after an upload answers,
    vector search scans the chunks not yet in the HNSW graph, and keyword search scores a
    new collection's first chunks from their words until its BM25 postings are built."""

    complete: bool = Field(
        description="Every chunk is in the HNSW graph and the BM25 postings (searches are at "
        "full speed)."
    )
    chunks_outside_graph: int = Field(
        description="Chunks a vector search scans beside the HNSW graph: all of a new "
        "collection's first chunks while its graph is built, or a write's chunks waiting to "
        "join it."
    )
    keyword_index_deferred: bool = Field(
        description="The BM25 postings of a new collection's first chunks are still being built."
    )


class CollectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: str
    name: str
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    document_count: int
    chunk_count: int = Field(description="Chunks of its completed documents.")
    indexing: CollectionIndexing
    created_at: datetime
    updated_at: datetime


class CollectionPage(BaseModel):
    data: list[CollectionRead]
    total: int
    limit: int
    offset: int
