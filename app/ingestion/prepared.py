"""An upload ready to process: everything about it decided once, before anything is written."""

from dataclasses import dataclass, field
from typing import Any

from app.core.config import MAX_CHUNK_SIZE, Settings
from app.core.errors import UnprocessableContent
from app.document.metadata import check_document_metadata
from app.ingestion.upload import StoredUpload
from app.processing.chunking import TextSplitter
from app.processing.units import DocumentType


@dataclass(frozen=True)
class ProcessingOptions:
    chunk_size: int
    chunk_overlap: int
    metadata: dict[str, Any] = field(default_factory=dict)
    use_cache: bool = True

    @classmethod
    def from_request(
        cls,
        settings: Settings,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> "ProcessingOptions":
        """Validated options: the settings' defaults where the request gives none."""
        options = cls(
            chunk_size=settings.chunk_size if chunk_size is None else chunk_size,
            chunk_overlap=settings.chunk_overlap if chunk_overlap is None else chunk_overlap,
            metadata=metadata or {},
        )
        options.splitter()
        if options.chunk_size < settings.min_chunk_size:
            raise UnprocessableContent(
                f"chunk_size ({options.chunk_size}) must be at least {settings.min_chunk_size} "
                "characters (RAGSTORE_MIN_CHUNK_SIZE)"
            )
        if options.chunk_size > MAX_CHUNK_SIZE:
            # Nor could PostgreSQL's integer column hold any size a client may send.
            raise UnprocessableContent(
                f"chunk_size ({options.chunk_size}) must be at most {MAX_CHUNK_SIZE} characters"
            )
        check_document_metadata(options.metadata, settings.max_metadata_bytes)
        return options

    def splitter(self) -> TextSplitter:
        try:
            return TextSplitter(chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap)
        except ValueError as exc:
            raise UnprocessableContent(str(exc)) from exc


@dataclass(frozen=True)
class PreparedUpload:
    """The stored file, its detected type, the cache key of its content and parameters,
    the collection it goes to, and how to process it."""

    stored: StoredUpload
    document_type: DocumentType
    cache_key: str
    collection_id: str
    options: ProcessingOptions

    @property
    def filename(self) -> str:
        return self.stored.filename
