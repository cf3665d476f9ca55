"""Ingestion: a stored upload becomes a version of a document, searchable in PostgreSQL.

Versions, not locks, keep concurrent work apart:
- every document has a `generation`; a committed upload, an accepted
  background upload and a retry each take the next one, and work for an
  older generation is discarded (compare-and-set);
- a synchronous upload notes what it saw before it began (the collection, and
  the document of that name if any) and may replace only that: the last
  acknowledged upload of a name wins, and a delete in the meantime wins over
  the upload (409), which re-creates nothing;
- the content is parsed, chunked and embedded into the processed-document
  cache with no transaction open while the model provider works
  (`pipeline.py`); identical content is taken from the cache;
- one short transaction then makes the new version current: the document
  row, its chunks (copied from the cache inside PostgreSQL) and its status,
  so readers see the previous version or the complete new one, never part;
- every writer locks in one order: collection, then document, then cache
  entry and chunks, so a delete and an ingest wait for each other instead of
  deadlocking;
- a bad file (415/422) stores nothing; an embedding provider that stays down
  past the retry budget leaves the document `failed` with the reason and its
  bytes, so it can be retried, unless a newer version or a delete came first.

This service owns its transactions (it takes the Database, not a session):
one upload needs several.
"""

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from app.collection.repository import CollectionRepository
from app.collection.service import get_collection
from app.core.config import Settings
from app.core.errors import AppError, Conflict, UnprocessableContent, UnsupportedMediaType
from app.db.database import Database
from app.db.models import Collection, Document, DocumentSource, DocumentStatus
from app.db.outage import is_lock_wait_cut_short
from app.document.index_builds import VectorIndexBuilds
from app.document.metadata import check_copied_metadata
from app.document.partitions import ChunkPartitionRepository
from app.document.repository import (
    CachedChunks,
    ChunkRepository,
    DocumentFileRepository,
    DocumentRepository,
)
from app.document.service import replace_metadata
from app.embeddings.base import EmbeddingModel, Vectors, as_vectors
from app.embeddings.errors import EmbeddingFailed
from app.ingestion.bulk_load import (
    PUBLISH_ATTEMPTS,
    BulkLoads,
    StagedFirstFill,
    StagingAhead,
    StagingUnusable,
)
from app.ingestion.cache import cache_key
from app.ingestion.pipeline import BuiltEntry, ProcessingPipeline
from app.ingestion.prepared import PreparedUpload, ProcessingOptions
from app.ingestion.progress import IngestProgress, ProgressCallback
from app.ingestion.repository import ProcessedDocumentRepository
from app.ingestion.upload import StoredUpload
from app.processing.detection import detect_document_type
from app.processing.units import DocumentType

logger = logging.getLogger(__name__)

# The document holding a collection's texts inserted through the Python API.
TEXTS_DOCUMENT = "vectordatabase"
CONTENT_TYPES = {
    DocumentType.PDF: "application/pdf",
    DocumentType.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    DocumentType.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    DocumentType.CSV: "text/csv",
    DocumentType.TEXT: "text/plain",
    DocumentType.MARKDOWN: "text/markdown",
    DocumentType.HTML: "text/html",
    DocumentType.PPTX: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    DocumentType.ODT: "application/vnd.oasis.opendocument.text",
    DocumentType.RTF: "application/rtf",
}
# A cache entry evicted between being built and being copied is built again, this often.
_BUILD_ATTEMPTS = 3
T = TypeVar("T")


@dataclass(frozen=True)
class IngestResult:
    document: Document
    collection: Collection
    already_processed: bool
    from_cache: bool
    # The same content is already the pending version (queued): nothing new was registered.
    in_flight: bool = False
    # The content was already processed, and this upload's metadata replaced the old.
    metadata_updated: bool = False


@dataclass(frozen=True)
class DocumentVersion:
    """One generation of one document: what a background job processes."""

    document_id: uuid.UUID
    generation: int


@dataclass(frozen=True)
class Baseline:
    """What a synchronous upload saw before it began: it may replace only that."""

    collection: Collection
    # The document of that name then, or None: its id and generation.
    document: DocumentVersion | None
    # Whether this upload created the collection (undone if the file is refused).
    created_collection: bool
    # The same content with the same parameters was already the current version.
    unchanged: Document | None


class VersionGone(Exception):
    """The version a job worked on is no longer current: deleted, or superseded.
    The database has already ended the job (its triggers); nothing is written."""


@dataclass
class _ChunkWrite:
    """A transaction writing a collection's chunks, whether they join its HNSW graph in it
    (a first fill, whose graph is built over them, or a write while too many chunks wait
    for the graph already) or after it commits (app/document/index_builds.py), and how many
    it wrote."""

    session: AsyncSession
    collection_id: str
    in_graph: bool
    first_fill: bool
    written: int = 0
    # Where the chunks are written: `chunks`, or the collection's partition itself for a
    # first fill whose BM25 postings are deferred. A statement on a partition does not fire
    # the statement triggers of `chunks` (the BM25 index's), which would only skip a
    # deferred collection's rows after capturing them all, vectors included, as their
    # transition table (benchmark 2, session 17: writing 10,000 chunks at 1,536 dimensions
    # took 1.47 s through `chunks`, 1.28 s into the partition, medians of 12).
    table: str = "chunks"
    # A first fill's chunks staged outside `chunks`, which this transaction publishes
    # instead of writing them (app/ingestion/bulk_load.py).
    staged: StagedFirstFill | None = None

    async def before_chunks(self) -> None:
        """Call it before writing chunks: a first fill's BM25 postings are built after it
        (migration 0015), like its HNSW graph. Not earlier: the collection may be made by
        the transaction itself."""
        if self.first_fill and not self.written:
            partitions = ChunkPartitionRepository(self.session)
            if await partitions.defer_keyword_index(self.collection_id):
                self.table = await partitions.name(self.collection_id)


class _PartitionAhead:
    """The collection's table of chunks for a write through `chunks`, made while the
    content is still being embedded, as soon as the chunker shows that the write is one
    (too few chunks for a bulk load); otherwise just before the commit.

    Attaching a table waits for every transaction writing documents. Made just before
    the commit, the table of one upload waited for the commit of another, and two uploads
    into new collections committed one after the other (benchmark 1b, session 21).
    """

    def __init__(
        self, make: Callable[[], Coroutine[Any, Any, None]], bulk_loads: BulkLoads
    ) -> None:
        self._make = make
        self._bulk_loads = bulk_loads
        self._task: asyncio.Task[None] | None = None

    def chunked(self, chunk_count: int) -> None:
        if self._task is None and not self._bulk_loads.large_enough(chunk_count):
            self._task = asyncio.create_task(self._make())

    async def made(self) -> None:
        """Once the table exists; raises what making it raised."""
        if self._task is None:
            await self._make()
        else:
            await self._task

    async def close(self) -> None:
        """Stop making it if nobody waits for it (the build failed)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass(frozen=True)
class _AheadOfCommit:
    """What an upload's commit needs, done while its content is embedded: the collection's
    table made (a write through `chunks`), or its chunks staged (a bulk load)."""

    partition: _PartitionAhead
    staging: StagingAhead

    def chunked(self, chunk_count: int) -> None:
        self.partition.chunked(chunk_count)

    def stored(self, builder: uuid.UUID, positions: range, chunks_made: int) -> None:
        self.staging.stored(builder, positions, chunks_made)

    async def before_complete(self, builder: uuid.UUID) -> None:
        await self.staging.before_complete(builder)


class _CacheEntryGone(Exception):
    """The cache entry was evicted between being built and being copied."""


class IngestionService:
    def __init__(
        self,
        database: Database,
        embedding_model: EmbeddingModel,
        settings: Settings,
        index_builds: VectorIndexBuilds | None = None,
    ) -> None:
        self.database = database
        self.embedding_model = embedding_model
        self.settings = settings
        self.pipeline = ProcessingPipeline(database, embedding_model, settings)
        self.index_builds = index_builds or VectorIndexBuilds(
            database, settings.index_build_memory_mb
        )
        self.bulk_loads = BulkLoads(database, settings)

    def with_api_key(self, api_key: str | None) -> "IngestionService":
        """This service with embeddings billed to a request's own key (the original api_key)."""
        if not api_key:
            return self
        return IngestionService(
            self.database,
            self.embedding_model.with_api_key(api_key),
            self.settings,
            self.index_builds,
        )

    async def prepare(
        self, upload: StoredUpload, collection_id: str | None, options: ProcessingOptions
    ) -> PreparedUpload:
        """Detect the type (415 before anything is stored) and key the content for the cache."""
        document_type = await asyncio.to_thread(detect_document_type, upload.path, upload.filename)
        key = cache_key(
            upload.sha256, options.chunk_size, options.chunk_overlap, self.embedding_model.model
        )
        return PreparedUpload(
            upload, document_type, key, collection_id or await self._new_collection_id(), options
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
        """Store the upload as the current version of its document, processed and searchable."""
        prepared = await self.prepare(upload, collection_id, options)
        baseline = await self._begin(prepared, create_collection)
        if baseline.unchanged is not None:
            return await self._reuse_unchanged(prepared, baseline, baseline.unchanged)
        # A new document's id is chosen now: the chunks of a bulk load are staged with it.
        document_id = baseline.document.document_id if baseline.document else uuid.uuid4()
        try:
            return await self._with_built_entry(
                prepared,
                on_progress or _ignore,
                functools.partial(self._commit_upload, prepared, baseline),
                document_id,
            )
        except EmbeddingFailed as exc:
            failed_id = await self._record_failure(prepared, baseline, exc.message)
            outcome = (
                f"The document ({failed_id}) is marked failed; upload it again to retry."
                if failed_id is not None
                else "A newer version of the document, or its deletion, came first."
            )
            raise EmbeddingFailed(f"{exc.message}. {outcome}") from exc
        except (UnprocessableContent, UnsupportedMediaType):
            if baseline.created_collection:
                await self._drop_collection_if_unused(baseline.collection)
            raise

    async def register(
        self,
        session: AsyncSession,
        upload: StoredUpload,
        collection_id: str | None,
        options: ProcessingOptions,
        *,
        create_collection: bool,
        join_in_flight: bool = True,
    ) -> IngestResult:
        """Record the upload as the next, `pending` version of its document with its bytes,
        for a worker to process (the caller queues the job in the same transaction).

        Bad types are refused here, before anything is stored; content that is already
        the current version is reported as such and nothing is queued; so is the same
        content already waiting as the current version (`in_flight`, unless told not to
        join it), whose job the caller hands out again.
        """
        prepared = await self.prepare(upload, collection_id, options)
        await _open_collection(session, prepared.collection_id, create_collection)
        collection = await CollectionRepository(session).lock_for_share(prepared.collection_id)
        if collection is None:
            raise Conflict(f"collection {prepared.collection_id!r} was deleted meanwhile")
        documents = DocumentRepository(session)
        existing = await documents.lock_by_filename(collection.id, upload.filename)
        _check_not_another_file(existing, upload)
        if _is_unchanged(existing, prepared):
            assert existing is not None
            updated = await self._update_metadata(session, existing, prepared)
            return IngestResult(existing, collection, True, True, metadata_updated=updated)
        if join_in_flight and _is_in_flight(existing, prepared):
            assert existing is not None
            return IngestResult(existing, collection, False, from_cache=False, in_flight=True)
        document = await _next_version(session, existing, prepared, DocumentStatus.PENDING)
        await DocumentFileRepository(session).store(document.id, upload.path)
        return IngestResult(document, collection, already_processed=False, from_cache=False)

    async def process_version(
        self, version: DocumentVersion, prepared: PreparedUpload, on_progress: ProgressCallback
    ) -> Document:
        """Process a registered version; raises VersionGone if it stopped being current."""

        async def commit(entry: BuiltEntry, staged: StagedFirstFill | None) -> Document:
            async with self._chunk_transaction(prepared.collection_id, staged) as write:
                document = await _lock_version(write.session, prepared.collection_id, version)
                await self._install_chunks(write, document, prepared, entry)
                return document

        return await self._with_built_entry(prepared, on_progress, commit, version.document_id)

    async def record_version_failure(
        self, collection_id: str, version: DocumentVersion, error: AppError
    ) -> bool:
        """Mark a registered version failed, if it is still current (its bytes stay, for a
        retry, if the error is one a retry can fix); False when it is gone."""
        async with self.database.session() as session:
            try:
                document = await _lock_version(session, collection_id, version)
            except VersionGone:
                return False
            await _mark_failed(session, document, error.message, retryable=error.retryable)
            return True

    async def record_refused(
        self,
        upload: StoredUpload,
        collection_id: str,
        options: ProcessingOptions,
        error: AppError,
    ) -> IngestResult:
        """Keep a file that cannot be processed as the next version of its document, failed
        with the reason: a stored file added to a collection ends `failed` (as OpenAI's
        vector store files do), where a direct upload is refused outright."""
        key = cache_key(
            upload.sha256, options.chunk_size, options.chunk_overlap, self.embedding_model.model
        )
        async with self.database.session() as session:
            collection = await CollectionRepository(session).lock_for_share(collection_id)
            if collection is None:
                raise Conflict(f"collection {collection_id!r} was deleted meanwhile")
            existing = await DocumentRepository(session).lock_by_filename(
                collection_id, upload.filename
            )
            _check_not_another_file(existing, upload)
            document = existing or Document(
                collection_id=collection_id, filename=upload.filename, generation=0
            )
            if existing is None:
                session.add(document)
            document.generation += 1
            document.source = DocumentSource.UPLOAD
            document.content_type = "application/octet-stream"
            document.size_bytes = upload.size_bytes
            document.content_sha256 = upload.sha256
            document.chunk_size = options.chunk_size
            document.chunk_overlap = options.chunk_overlap
            document.cache_key = key
            document.metadata_ = options.metadata
            document.file_id = upload.file_id
            await session.flush()
            await _mark_failed(session, document, error.message, retryable=False)
            await session.refresh(document)
        return IngestResult(document, collection, already_processed=False, from_cache=False)

    async def check_processable(self, upload: StoredUpload) -> None:
        """Refuse now what processing would refuse later: an unsupported type (415), or a
        file that is empty, damaged, encrypted or without text (422)."""
        document_type = await asyncio.to_thread(detect_document_type, upload.path, upload.filename)
        await self.pipeline.check_readable(upload, document_type)

    async def insert_texts(
        self, collection_id: str, texts: Sequence[str], vectors: Vectors | None = None
    ) -> int:
        """Append texts as chunks of the collection's `vectordatabase` document.

        The original app's `VectorDatabase.insert`, persistent: texts are embedded here,
        before any connection is taken, unless their vectors are given. The document is
        of source `texts`: it has no file, so no hash, cache key or chunking parameters.
        """
        if not texts:
            return 0
        with self.index_builds.foreground():
            return await self._insert_texts(collection_id, texts, vectors)

    async def _insert_texts(
        self, collection_id: str, texts: Sequence[str], vectors: Vectors | None
    ) -> int:
        if vectors is None:
            vectors = await self.embedding_model.aget_embeddings_batched(texts)
        vectors = as_vectors(vectors, self.embedding_model.dimensions)
        if len(vectors) != len(texts):
            raise UnprocessableContent(f"{len(texts)} texts but {len(vectors)} vectors")
        await self._create_partition(collection_id)
        async with self._chunk_transaction(collection_id) as write:
            session = write.session
            collections = CollectionRepository(session)
            await collections.create_if_absent(collection_id, collection_id)
            if await collections.lock_for_share(collection_id) is None:
                raise Conflict(f"collection {collection_id!r} was deleted during the insert")
            document = await _texts_document(session, collection_id)
            start, upload_time = document.chunk_count, datetime.now(UTC).isoformat()
            rows = [
                (
                    document.id,
                    collection_id,
                    start + offset,
                    text,
                    json.dumps(
                        {
                            "filename": TEXTS_DOCUMENT,
                            "chunk_index": start + offset,
                            "upload_time": upload_time,
                        }
                    ),
                    vector,
                )
                for offset, (text, vector) in enumerate(zip(texts, vectors, strict=True))
            ]
            await write.before_chunks()
            await ChunkRepository(session).copy(rows, write.in_graph, write.table)
            write.written += len(rows)
            document.chunk_count = start + len(rows)
            document.size_bytes += sum(len(text.encode()) for text in texts)
        return len(rows)

    async def _reuse_unchanged(
        self, prepared: PreparedUpload, baseline: Baseline, document: Document
    ) -> IngestResult:
        """The content is already the current version: nothing is processed again, and
        this upload's metadata, if it differs, replaces the old (chunks included)."""
        if document.metadata_ == prepared.options.metadata:
            return IngestResult(document, baseline.collection, True, from_cache=True)
        async with self.database.session() as session:
            try:
                version = DocumentVersion(document.id, document.generation)
                locked = await _lock_version(session, prepared.collection_id, version)
            except VersionGone:
                raise Conflict(
                    f"{prepared.filename!r} was changed or deleted during this upload; "
                    "send it again"
                ) from None
            updated = await self._update_metadata(session, locked, prepared)
        return IngestResult(locked, baseline.collection, True, True, metadata_updated=updated)

    async def _update_metadata(
        self, session: AsyncSession, document: Document, prepared: PreparedUpload
    ) -> bool:
        """Give the locked document the upload's metadata; False when it already had it."""
        metadata = prepared.options.metadata
        if document.metadata_ == metadata:
            return False
        check_copied_metadata(metadata, document.chunk_count, self.settings.max_copied_metadata_mb)
        await replace_metadata(session, document, metadata)
        return True

    async def _new_collection_id(self) -> str:
        async with self.database.session() as session:
            generated = await session.scalar(select(func.gen_random_uuid()))
        return str(generated)

    async def _begin(self, prepared: PreparedUpload, create_collection: bool) -> Baseline:
        async with self.database.session() as session:
            collection, created = await _open_collection(
                session, prepared.collection_id, create_collection
            )
            document = await DocumentRepository(session).get_by_filename(
                collection.id, prepared.filename
            )
        unchanged = document if _is_unchanged(document, prepared) else None
        return Baseline(collection, _version_of(document), created, unchanged)

    async def _with_built_entry(
        self,
        prepared: PreparedUpload,
        on_progress: ProgressCallback,
        commit: Callable[[BuiltEntry, StagedFirstFill | None], Awaitable[T]],
        document_id: uuid.UUID,
    ) -> T:
        """Build (or find) the content's cache entry, then `commit` it to the document
        (`document_id`, if the commit makes it); built again if it was evicted in between."""
        started = time.perf_counter()
        for _attempt in range(_BUILD_ATTEMPTS):
            # Without the cache, the content is staged under a key of this upload alone.
            entry_key = (
                prepared.cache_key
                if prepared.options.use_cache
                else f"{prepared.cache_key}:{uuid.uuid4().hex}"
            )
            source = CachedChunks(
                entry_key, document_id, prepared.collection_id, _chunk_metadata(prepared)
            )
            with self.index_builds.foreground():
                async with self._ahead_of_commit(source) as ahead:
                    entry = await self.pipeline.build(prepared, entry_key, on_progress, ahead)
                    try:
                        committed = await self._commit_entry(prepared, entry, commit, ahead)
                    except _CacheEntryGone:
                        continue
                    finally:
                        await self._after_build(prepared, entry)
            logger.info(
                "ingested %s into %s: %d chunks in %.2f s (%s)",
                prepared.filename,
                prepared.collection_id,
                entry.chunk_count,
                time.perf_counter() - started,
                "from the cache" if entry.from_cache else "embedded",
            )
            return committed
        raise AppError("the processed content was evicted from the cache repeatedly; retry")

    async def _commit_entry(
        self,
        prepared: PreparedUpload,
        entry: BuiltEntry,
        commit: Callable[[BuiltEntry, StagedFirstFill | None], Awaitable[T]],
        ahead: _AheadOfCommit,
    ) -> T:
        """`commit` the entry: its chunks staged first when they are a bulk load
        (app/ingestion/bulk_load.py), written through `chunks` otherwise."""
        if await self.bulk_loads.applies(prepared.collection_id, entry.chunk_count):
            source = ahead.staging.source
            async with self.bulk_loads.staged(source, entry.chunk_count, ahead.staging) as staged:
                try:
                    return await self._publish(entry, staged, commit)
                except StagingUnusable as exc:
                    logger.info("%s is written through chunks: %s", prepared.filename, exc)
        await ahead.partition.made()
        return await commit(entry, None)

    @asynccontextmanager
    async def _ahead_of_commit(self, source: CachedChunks) -> AsyncIterator[_AheadOfCommit]:
        partition = _PartitionAhead(
            functools.partial(self._create_partition, source.collection_id), self.bulk_loads
        )
        staging = StagingAhead(self.bulk_loads, source)
        try:
            yield _AheadOfCommit(partition, staging)
        finally:
            await partition.close()
            await staging.close()

    async def _publish(
        self,
        entry: BuiltEntry,
        staged: StagedFirstFill,
        commit: Callable[[BuiltEntry, StagedFirstFill | None], Awaitable[T]],
    ) -> T:
        """`commit` with the staged chunks, tried again while its attach times out waiting
        for other writers (StagingUnusable once it has tried enough)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_lock_wait_cut_short),
            stop=stop_after_attempt(PUBLISH_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await commit(entry, staged)
        except Exception as exc:
            if is_lock_wait_cut_short(exc):
                raise StagingUnusable("its attach kept waiting for other writers") from exc
            raise
        raise AssertionError("unreachable: tenacity returns or raises")

    async def _commit_upload(
        self,
        prepared: PreparedUpload,
        baseline: Baseline,
        entry: BuiltEntry,
        staged: StagedFirstFill | None,
    ) -> IngestResult:
        """Make the built content the current version, if what the upload saw still stands."""
        async with self._chunk_transaction(prepared.collection_id, staged) as write:
            session = write.session
            collection = await _lock_collection(session, baseline.collection)
            documents = DocumentRepository(session)
            document = await documents.lock_by_filename(collection.id, prepared.filename)
            if baseline.document is not None and (
                document is None or document.id != baseline.document.document_id
            ):
                raise Conflict(
                    f"document {prepared.filename!r} was deleted while this upload was "
                    "processed; upload it again to store it"
                )
            if _is_unchanged(document, prepared):
                assert document is not None
                return IngestResult(document, collection, True, from_cache=True)
            document = await _next_version(
                session,
                document,
                prepared,
                DocumentStatus.PROCESSING,
                new_id=staged.document_id if staged else None,
            )
            await self._install_chunks(write, document, prepared, entry)
            return IngestResult(document, collection, False, from_cache=entry.from_cache)

    @asynccontextmanager
    async def _chunk_transaction(
        self, collection_id: str, staged: StagedFirstFill | None = None
    ) -> AsyncIterator[_ChunkWrite]:
        """A transaction that writes the collection's chunks (app/document/partitions.py),
        into the partition the caller made first (`_create_partition`): if it has no vector
        index yet, this one takes its lock before anything else and builds the index over
        the chunks it wrote, and their BM25 postings: before it commits, or for a few
        chunks just after. If it has one, the chunks join its graph after the commit,
        unless too many wait already (app/document/index_builds.py). With `staged` chunks
        (a bulk load), the partition is missing, this one takes its lock, and the chunks are
        published with every index built."""
        deferred = keywords_deferred = False
        async with self.database.session() as session:
            partitions = ChunkPartitionRepository(session)
            first_fill = await partitions.claim_first_fill(collection_id)
            in_graph = (
                first_fill
                or await partitions.graph_pending_count(collection_id)
                >= self.settings.vector_index_deferred_max_chunks
            )
            write = _ChunkWrite(session, collection_id, in_graph, first_fill, staged=staged)
            yield write
            if first_fill and staged is None:
                chunks = await partitions.chunk_count(collection_id)
                deferred = chunks <= self.settings.vector_index_deferred_max_chunks
                if not deferred:
                    await partitions.build_vector_index(
                        collection_id, self.settings.index_build_memory_mb, chunks
                    )
                    await partitions.build_keyword_index(collection_id)
            elif write.written:
                # A first fill's keyword build still to come (or cut short by a crash).
                keywords_deferred = await partitions.keyword_index_deferred(collection_id)
        if deferred:
            self.index_builds.start(collection_id)
        else:
            if keywords_deferred:
                self.index_builds.start_keywords(collection_id)
            if not in_graph and write.written:
                self.index_builds.add_pending(collection_id, write.written)

    async def _create_partition(self, collection_id: str) -> None:
        """The collection's partition, if it is missing, in a transaction of its own."""
        async with self.database.session() as session:
            await ChunkPartitionRepository(session).create_if_missing(collection_id)

    async def _install_chunks(
        self,
        write: _ChunkWrite,
        document: Document,
        prepared: PreparedUpload,
        entry: BuiltEntry,
    ) -> None:
        """The document's chunks from the cache entry, in the caller's transaction."""
        session = write.session
        if write.staged is not None:
            # The collection had no table of chunks: the document has none to delete.
            await self.bulk_loads.publish(session, write.staged, document.id)
            count = write.staged.chunk_count
        else:
            count = await self._copy_chunks(write, document, prepared, entry)
        write.written += count
        document.status, document.chunk_count, document.error = (
            DocumentStatus.COMPLETED,
            count,
            None,
        )
        await DocumentFileRepository(session).remove(document.id)
        await session.flush()
        # Load server-set columns (updated_at) now: the result outlives the session.
        await session.refresh(document)

    async def _copy_chunks(
        self, write: _ChunkWrite, document: Document, prepared: PreparedUpload, entry: BuiltEntry
    ) -> int:
        """The document's chunks from the cache entry, replacing its old ones; how many."""
        session = write.session
        if not await ProcessedDocumentRepository(session).use_complete(entry.cache_key):
            raise _CacheEntryGone(entry.cache_key)
        chunks = ChunkRepository(session)
        await chunks.delete_for_document(document.collection_id, document.id)
        await write.before_chunks()
        source = CachedChunks(
            entry.cache_key, document.id, document.collection_id, _chunk_metadata(prepared)
        )
        return await chunks.copy_from_cache(source, write.in_graph, write.table)

    async def _record_failure(
        self, prepared: PreparedUpload, baseline: Baseline, reason: str
    ) -> uuid.UUID | None:
        """Record the document as failed with its bytes, if nothing newer came first.

        Never creates a collection, and never writes over a newer version or a delete.
        """
        async with self.database.session() as session:
            try:
                collection = await _lock_collection(session, baseline.collection)
            except Conflict:
                logger.warning("%s failed after its collection was deleted", prepared.filename)
                return None
            document = await DocumentRepository(session).lock_by_filename(
                collection.id, prepared.filename
            )
            if _version_of(document) != baseline.document:
                logger.warning("%s failed; a newer version came first", prepared.filename)
                return None
            # The provider failed, not the file: a retry may succeed.
            document = await _next_version(
                session, document, prepared, DocumentStatus.FAILED, retryable=True
            )
            await _mark_failed(session, document, reason, retryable=True)
            # Kept so the document can be retried later without a new upload.
            await DocumentFileRepository(session).store(document.id, prepared.stored.path)
            logger.warning("document %s (%s) failed: %s", document.id, prepared.filename, reason)
            return document.id

    async def _drop_collection_if_unused(self, collection: Collection) -> None:
        """Undo the collection a refused upload created, unless something else uses it now."""
        async with self.database.session() as session:
            locked = await CollectionRepository(session).lock_for_update(collection.id)
            if locked is None or locked.created_at != collection.created_at:
                return
            if await DocumentRepository(session).count_in_collection(collection.id) == 0:
                await CollectionRepository(session).delete(locked)

    async def _after_build(self, prepared: PreparedUpload, entry: BuiltEntry) -> None:
        """Drop a private staging entry; trim the cache after new content was built."""
        if not prepared.options.use_cache:
            async with self.database.session() as session:
                await ProcessedDocumentRepository(session).drop(entry.cache_key)
        elif not entry.from_cache:
            await self._evict_cache()

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


async def _open_collection(
    session: AsyncSession, collection_id: str, create_collection: bool
) -> tuple[Collection, bool]:
    """The collection, created if asked to and absent (True then), or 404 if it is missing."""
    created = create_collection and await CollectionRepository(session).create_if_absent(
        collection_id, collection_id
    )
    return await get_collection(session, collection_id), created


async def _lock_collection(session: AsyncSession, seen: Collection) -> Collection:
    """The collection the work began in, held against deletion until commit: a DELETE
    that came first wins (409), and one that comes later waits for this transaction."""
    collection = await CollectionRepository(session).lock_for_share(seen.id)
    if collection is None or collection.created_at != seen.created_at:
        raise Conflict(f"collection {seen.id!r} was deleted while this upload was processed")
    return collection


async def _lock_version(
    session: AsyncSession, collection_id: str, version: DocumentVersion
) -> Document:
    """The version, locked in the writers' order (collection, then document), or VersionGone."""
    if await CollectionRepository(session).lock_for_share(collection_id) is None:
        raise VersionGone(version)
    document = await DocumentRepository(session).lock_version(
        version.document_id, version.generation
    )
    if document is None:
        raise VersionGone(version)
    return document


def _version_of(document: Document | None) -> DocumentVersion | None:
    return None if document is None else DocumentVersion(document.id, document.generation)


def _is_in_flight(document: Document | None, prepared: PreparedUpload) -> bool:
    return (
        document is not None
        and document.status in (DocumentStatus.PENDING, DocumentStatus.PROCESSING)
        and document.cache_key == prepared.cache_key
    )


def _check_not_another_file(document: Document | None, upload: StoredUpload) -> None:
    """A collection keys its documents by file name: a stored file may not take the place
    of a document of that name made from another file (or uploaded directly)."""
    if upload.file_id is None or document is None or document.file_id == upload.file_id:
        return
    holder = f"file {document.file_id}" if document.file_id else "a direct upload"
    raise Conflict(
        f"collection {document.collection_id!r} already holds a document named "
        f"{document.filename!r}, from {holder}; a collection keys its documents by file name"
    )


def _is_unchanged(document: Document | None, prepared: PreparedUpload) -> bool:
    return (
        document is not None
        and document.status == DocumentStatus.COMPLETED
        and document.cache_key == prepared.cache_key
    )


async def _next_version(
    session: AsyncSession,
    document: Document | None,
    prepared: PreparedUpload,
    status: DocumentStatus,
    retryable: bool | None = None,
    new_id: uuid.UUID | None = None,
) -> Document:
    """The document (locked by the caller) as its next generation, describing this upload
    (`retryable` says, for a failed one, whether a retry can fix it); a new one gets
    `new_id`, if given."""
    if document is None:
        document = Document(
            id=new_id or uuid.uuid4(),
            collection_id=prepared.collection_id,
            filename=prepared.filename,
            generation=1,
        )
        session.add(document)
    else:
        document.generation += 1
    upload = prepared.stored
    document.source = DocumentSource.UPLOAD
    document.content_type = CONTENT_TYPES[prepared.document_type]
    document.size_bytes = upload.size_bytes
    document.content_sha256 = upload.sha256
    document.chunk_size = prepared.options.chunk_size
    document.chunk_overlap = prepared.options.chunk_overlap
    document.cache_key = prepared.cache_key
    document.metadata_ = prepared.options.metadata
    document.file_id = upload.file_id
    document.status = status
    document.error, document.retryable = None, retryable
    await session.flush()
    await session.refresh(document)
    return document


def _chunk_metadata(prepared: PreparedUpload) -> dict[str, object]:
    """What every chunk of the upload's document carries besides its own metadata."""
    return {
        **prepared.options.metadata,
        "filename": prepared.filename,
        "upload_time": datetime.now(UTC).isoformat(),
    }


async def _texts_document(session: AsyncSession, collection_id: str) -> Document:
    """The collection's texts document, locked, created empty if it has none yet."""
    documents = DocumentRepository(session)
    document = await documents.lock_by_filename(collection_id, TEXTS_DOCUMENT)
    if document is None:
        document = Document(
            collection_id=collection_id,
            filename=TEXTS_DOCUMENT,
            source=DocumentSource.TEXTS,
            content_type="text/plain",
            size_bytes=0,
            status=DocumentStatus.COMPLETED,
        )
        session.add(document)
        await session.flush()
        await session.refresh(document)
    elif document.source != DocumentSource.TEXTS:
        raise Conflict(
            f"collection {collection_id!r} has an uploaded file named {TEXTS_DOCUMENT!r}, "
            "where inserted texts are kept: rename or delete that file"
        )
    return document


async def _mark_failed(
    session: AsyncSession, document: Document, reason: str, *, retryable: bool
) -> None:
    """Failed documents keep no chunks: nothing of a version that did not complete is found."""
    document.status, document.error, document.chunk_count = DocumentStatus.FAILED, reason, 0
    document.retryable = retryable
    await ChunkRepository(session).delete_for_document(document.collection_id, document.id)
    await session.flush()


def _ignore(_progress: IngestProgress) -> None:
    return None
