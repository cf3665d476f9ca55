"""Ingestion: a stored upload becomes a document whose chunks and vectors are in PostgreSQL.

Exactly once, and all at once:
- an advisory lock per (collection, filename) serialises concurrent uploads of
  the same name, so the second finds the first's result instead of a race;
- the document row, its chunks and its cache entry are written in one
  transaction, so readers see either the previous version or the complete new
  one — never part of a document;
- identical content with identical processing parameters is taken from the
  processed-document cache: no parsing, no embedding calls;
- a bad file (415/422) rolls everything back: nothing is stored;
- an embedding provider that stays down past the retry budget rolls the work
  back too, and then the document is recorded as `failed` with the reason, so
  nothing is dropped silently and the upload can be retried.

This service owns its transactions (it takes the Database, not a session)
because a failure must be committed while the failed work is rolled back.
"""

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.collection.repository import CollectionRepository
from app.collection.service import get_collection
from app.core.config import MAX_CHUNK_SIZE, Settings
from app.core.errors import UnprocessableContent
from app.db.database import Database
from app.db.locks import advisory_lock
from app.db.models import Collection, Document, DocumentStatus, ProcessedDocument
from app.document.repository import ChunkRepository, DocumentFileRepository, DocumentRepository
from app.embeddings.base import EmbeddingModel, Vectors, as_vectors
from app.embeddings.errors import EmbeddingFailed
from app.ingestion.cache import cache_key
from app.ingestion.progress import IngestProgress, ProgressCallback, counted
from app.ingestion.repository import ProcessedDocumentRepository
from app.ingestion.upload import StoredUpload, metadata_too_large
from app.processing.chunking import TextSplitter, chunk_units
from app.processing.detection import detect_document_type
from app.processing.parsers import ParseLimits, parse_document
from app.processing.units import ChunkDraft, DocumentType

logger = logging.getLogger(__name__)

# The document that holds a collection's directly inserted texts (Python API).
VECTOR_DOCUMENT = "vectordatabase"
CONTENT_TYPES = {
    DocumentType.PDF: "application/pdf",
    DocumentType.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    DocumentType.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    DocumentType.CSV: "text/csv",
    DocumentType.TEXT: "text/plain",
    DocumentType.MARKDOWN: "text/markdown",
    DocumentType.HTML: "text/html",
}


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
        if options.chunk_size > MAX_CHUNK_SIZE:
            # Nor could PostgreSQL's integer column hold any size a client may send.
            raise UnprocessableContent(
                f"chunk_size ({options.chunk_size}) must be at most {MAX_CHUNK_SIZE} characters"
            )
        if len(json.dumps(options.metadata)) > settings.max_metadata_bytes:
            raise UnprocessableContent(metadata_too_large(settings.max_metadata_bytes))
        return options

    def splitter(self) -> TextSplitter:
        try:
            return TextSplitter(chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap)
        except ValueError as exc:
            raise UnprocessableContent(str(exc)) from exc


@dataclass(frozen=True)
class IngestResult:
    document: Document
    collection: Collection
    already_processed: bool
    from_cache: bool


class IngestionService:
    def __init__(
        self, database: Database, embedding_model: EmbeddingModel, settings: Settings
    ) -> None:
        self.database = database
        self.embedding_model = embedding_model
        self.settings = settings

    def with_api_key(self, api_key: str | None) -> "IngestionService":
        """This service with embeddings billed to a request's own key (the original api_key)."""
        if not api_key:
            return self
        return IngestionService(
            self.database, self.embedding_model.with_api_key(api_key), self.settings
        )

    async def ingest(
        self,
        upload: StoredUpload,
        collection_id: str | None,
        options: ProcessingOptions,
        *,
        create_collection: bool,
        on_progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """Store the upload as a document of the collection, processed and searchable."""
        document_type = await asyncio.to_thread(detect_document_type, upload.path, upload.filename)
        key = cache_key(
            upload.sha256, options.chunk_size, options.chunk_overlap, self.embedding_model.model
        )
        collection_id = collection_id or await self._new_collection_id()
        try:
            async with self.database.session() as session:
                result = await self._ingest_locked(
                    session,
                    upload,
                    document_type,
                    key,
                    collection_id,
                    options,
                    create_collection,
                    on_progress or _ignore,
                )
        except EmbeddingFailed as exc:
            document_id = await self._record_failure(
                upload, document_type, key, collection_id, options, exc.message
            )
            raise EmbeddingFailed(
                f"{exc.message}. The document ({document_id}) is marked failed; "
                "upload it again to retry."
            ) from exc
        if result.from_cache or result.already_processed:
            return result
        await self._evict_cache()
        return result

    async def insert_texts(
        self, collection_id: str, texts: Sequence[str], vectors: Vectors | None = None
    ) -> int:
        """Append texts as chunks of the collection's `vectordatabase` document.

        The original app's `VectorDatabase.insert`, persistent: texts are embedded
        here unless their vectors are given.
        """
        if not texts:
            return 0
        if vectors is None:
            vectors = await self.embedding_model.aget_embeddings_batched(texts)
        vectors = as_vectors(vectors, self.embedding_model.dimensions)
        if len(vectors) != len(texts):
            raise UnprocessableContent(f"{len(texts)} texts but {len(vectors)} vectors")
        async with self.database.session() as session:
            await advisory_lock(session, f"document:{collection_id}/{VECTOR_DOCUMENT}")
            collection = await CollectionRepository(session).get_or_create(
                collection_id, collection_id
            )
            documents = DocumentRepository(session)
            document = await documents.get_by_filename(collection.id, VECTOR_DOCUMENT)
            if document is None:
                document = await documents.create(
                    Document(
                        collection_id=collection.id,
                        filename=VECTOR_DOCUMENT,
                        content_type="application/x-ragstore-vectors",
                        size_bytes=0,
                        content_sha256="",
                        chunk_size=0,
                        chunk_overlap=0,
                        cache_key="",
                        status=DocumentStatus.COMPLETED,
                    )
                )
            start, upload_time = document.chunk_count, datetime.now(UTC).isoformat()
            rows = [
                (
                    document.id,
                    collection.id,
                    start + offset,
                    text,
                    json.dumps(
                        {
                            "filename": VECTOR_DOCUMENT,
                            "chunk_index": start + offset,
                            "upload_time": upload_time,
                        }
                    ),
                    vector,
                )
                for offset, (text, vector) in enumerate(zip(texts, vectors, strict=True))
            ]
            await ChunkRepository(session).copy(rows)
            document.chunk_count = start + len(rows)
        return len(rows)

    async def register(
        self,
        session: AsyncSession,
        upload: StoredUpload,
        collection_id: str | None,
        options: ProcessingOptions,
        *,
        create_collection: bool,
    ) -> IngestResult:
        """Record the upload as a `pending` document with its bytes, for a worker to process.

        Bad types are refused here, before anything is stored; content already
        processed in this collection is reported as such and nothing is queued.
        """
        document_type = await asyncio.to_thread(detect_document_type, upload.path, upload.filename)
        key = cache_key(
            upload.sha256, options.chunk_size, options.chunk_overlap, self.embedding_model.model
        )
        collection_id = collection_id or await self._new_collection_id()
        await advisory_lock(session, f"document:{collection_id}/{upload.filename}")
        collection = await _resolve_collection(session, collection_id, create_collection)
        existing = await DocumentRepository(session).get_by_filename(collection.id, upload.filename)
        if (
            existing is not None
            and existing.status == DocumentStatus.COMPLETED
            and existing.cache_key == key
        ):
            return IngestResult(existing, collection, already_processed=True, from_cache=True)
        document = await self._upsert_document(
            session,
            existing,
            collection.id,
            upload,
            document_type,
            key,
            options,
            DocumentStatus.PENDING,
        )
        await DocumentFileRepository(session).store(document.id, upload.path)
        return IngestResult(document, collection, already_processed=False, from_cache=False)

    async def _new_collection_id(self) -> str:
        async with self.database.session() as session:
            generated = await session.scalar(select(func.gen_random_uuid()))
        return str(generated)

    async def _ingest_locked(
        self,
        session: AsyncSession,
        upload: StoredUpload,
        document_type: DocumentType,
        key: str,
        collection_id: str,
        options: ProcessingOptions,
        create_collection: bool,
        on_progress: ProgressCallback,
    ) -> IngestResult:
        await advisory_lock(session, f"document:{collection_id}/{upload.filename}")
        collection = await _resolve_collection(session, collection_id, create_collection)
        documents = DocumentRepository(session)
        existing = await documents.get_by_filename(collection.id, upload.filename)
        if (
            existing is not None
            and existing.status == DocumentStatus.COMPLETED
            and existing.cache_key == key
        ):
            return IngestResult(existing, collection, already_processed=True, from_cache=True)

        document = await self._upsert_document(
            session,
            existing,
            collection.id,
            upload,
            document_type,
            key,
            options,
            DocumentStatus.PROCESSING,
        )
        chunks = ChunkRepository(session)
        await chunks.delete_for_document(document.id)
        cache = ProcessedDocumentRepository(session)
        cached = None
        if options.use_cache:
            # The same content under another name may be processing right now: wait
            # for it and reuse its result rather than embed it a second time.
            await advisory_lock(session, f"cache:{key}")
            cached = await cache.get(key)
        chunk_metadata = {
            **options.metadata,
            "filename": upload.filename,
            "upload_time": datetime.now(UTC).isoformat(),
        }
        if cached is not None:
            count = await chunks.copy_from_cache(key, document.id, collection.id, chunk_metadata)
            await cache.touch(key)
            on_progress(IngestProgress(0, count, count, count))
        else:
            count = await self._process(
                session, upload, document_type, key, document, options, chunk_metadata, on_progress
            )
        if count == 0:
            raise UnprocessableContent(f"no extractable text in {upload.filename}")
        document.status, document.chunk_count, document.error = (
            DocumentStatus.COMPLETED,
            count,
            None,
        )
        await DocumentFileRepository(session).remove(document.id)
        await session.flush()
        # Load server-set columns (updated_at) now: the result outlives the session.
        await session.refresh(document)
        return IngestResult(
            document, collection, already_processed=False, from_cache=cached is not None
        )

    async def _upsert_document(
        self,
        session: AsyncSession,
        existing: Document | None,
        collection_id: str,
        upload: StoredUpload,
        document_type: DocumentType,
        key: str,
        options: ProcessingOptions,
        status: DocumentStatus,
    ) -> Document:
        document = existing or Document(collection_id=collection_id, filename=upload.filename)
        document.content_type = CONTENT_TYPES[document_type]
        document.size_bytes = upload.size_bytes
        document.content_sha256 = upload.sha256
        document.chunk_size = options.chunk_size
        document.chunk_overlap = options.chunk_overlap
        document.cache_key = key
        document.metadata_ = options.metadata
        document.status = status
        document.chunk_count = 0
        document.error = None
        session.add(document)
        await session.flush()
        await session.refresh(document)
        return document

    async def _process(
        self,
        session: AsyncSession,
        upload: StoredUpload,
        document_type: DocumentType,
        key: str,
        document: Document,
        options: ProcessingOptions,
        chunk_metadata: dict[str, Any],
        on_progress: ProgressCallback,
    ) -> int:
        """Parse, chunk, embed and COPY, slice by slice, so memory stays flat."""
        cache = ProcessedDocumentRepository(session) if options.use_cache else None
        if cache is not None:
            await cache.replace(
                ProcessedDocument(
                    cache_key=key,
                    content_sha256=upload.sha256,
                    chunk_size=options.chunk_size,
                    chunk_overlap=options.chunk_overlap,
                    embedding_model=self.embedding_model.model,
                    chunk_count=0,
                )
            )
        progress = IngestProgress()
        limits = ParseLimits(
            max_unpacked_bytes=int(self.settings.max_unpacked_mb * 1024 * 1024),
            max_pdf_pages=self.settings.max_pdf_pages,
            max_csv_columns=self.settings.max_csv_columns,
        )
        units = counted(parse_document(upload.path, document_type, limits), progress)
        drafts = chunk_units(units, options.splitter())

        def embedded(count: int) -> None:
            progress.chunks_embedded += count
            on_progress(progress)

        # Enough chunks per slice to keep every allowed embedding request busy.
        slice_size = self.settings.embedding_batch_size * self.settings.embedding_concurrency
        chunks = ChunkRepository(session)
        count = 0
        while batch := await asyncio.to_thread(_take, drafts, slice_size):
            progress.chunks_made += len(batch)
            on_progress(progress)
            vectors = await self.embedding_model.aget_embeddings_batched(
                [d.text for d in batch], embedded
            )
            await chunks.copy(
                [
                    (
                        document.id,
                        document.collection_id,
                        draft.index,
                        draft.text,
                        json.dumps(
                            {**chunk_metadata, **draft.metadata, "chunk_index": draft.index}
                        ),
                        vector,
                    )
                    for draft, vector in zip(batch, vectors, strict=True)
                ]
            )
            if cache is not None:
                await cache.copy_chunks(
                    [
                        (key, draft.index, draft.text, json.dumps(draft.metadata), vector)
                        for draft, vector in zip(batch, vectors, strict=True)
                    ]
                )
            count += len(batch)
            progress.chunks_stored = count
            on_progress(progress)
        if cache is not None:
            entry = await cache.get(key)
            assert entry is not None
            entry.chunk_count = count
        return count

    async def _record_failure(
        self,
        upload: StoredUpload,
        document_type: DocumentType,
        key: str,
        collection_id: str,
        options: ProcessingOptions,
        reason: str,
    ) -> str:
        async with self.database.session() as session:
            await advisory_lock(session, f"document:{collection_id}/{upload.filename}")
            collection = await CollectionRepository(session).get_or_create(
                collection_id, collection_id
            )
            existing = await DocumentRepository(session).get_by_filename(
                collection.id, upload.filename
            )
            document = await self._upsert_document(
                session,
                existing,
                collection.id,
                upload,
                document_type,
                key,
                options,
                DocumentStatus.FAILED,
            )
            document.error = reason
            await ChunkRepository(session).delete_for_document(document.id)
            # Kept so the document can be retried later without a new upload.
            await DocumentFileRepository(session).store(document.id, upload.path)
            logger.warning("document %s (%s) failed: %s", document.id, upload.filename, reason)
            return str(document.id)

    async def _evict_cache(self) -> None:
        try:
            async with self.database.session() as session:
                removed = await ProcessedDocumentRepository(session).evict(
                    self.settings.cache_max_entries,
                    timedelta(days=self.settings.cache_max_age_days),
                )
            if removed:
                logger.info("processed-document cache: evicted %d entries", removed)
        except Exception:
            # The cache is an optimisation: failing to trim it must not fail an upload.
            logger.exception("processed-document cache eviction failed")


async def _resolve_collection(
    session: AsyncSession, collection_id: str, create_collection: bool
) -> Collection:
    if create_collection:
        return await CollectionRepository(session).get_or_create(collection_id, collection_id)
    return await get_collection(session, collection_id)


def _ignore(_progress: IngestProgress) -> None:
    return None


def _take(drafts: Iterator[ChunkDraft], size: int) -> list[ChunkDraft]:
    return list(islice(drafts, size))
