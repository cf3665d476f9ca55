"""Background ingestion: queue an upload now, process it on any worker, report progress.

A job never shows twice: the ingestion itself is exactly-once (advisory lock,
one transaction, the cache), so a job retried after its worker died finishes
the one document the first attempt left `pending`.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    UnprocessableContent,
    UnsupportedMediaType,
)
from app.db.database import Database
from app.db.models import (
    FINISHED_JOB_STATES,
    Document,
    DocumentStatus,
    IngestionJob,
    JobState,
    StoredFile,
)
from app.document.partitions import drop_orphaned_partitions
from app.document.repository import DocumentFileRepository, DocumentRepository
from app.document.staging import drop_abandoned_stagings
from app.files.service import copy_to_disk
from app.ingestion.prepared import PreparedUpload, ProcessingOptions
from app.ingestion.progress import IngestProgress
from app.ingestion.repository import building_under_lease
from app.ingestion.service import DocumentVersion, IngestionService, IngestResult, VersionGone
from app.ingestion.upload import (
    StoredUpload,
    UploadRequest,
    copy_to_temporary,
    received_upload,
)
from app.jobs.queue import TASK, JobQueue
from app.jobs.repository import IngestionJobRepository

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class Accepted:
    """What an upload route answers with: the document, and its job when it was queued."""

    result: IngestResult
    job: IngestionJob | None


@dataclass
class RetriedFailures:
    """What a retry of a collection's failures did: the jobs queued, and the documents left
    failed because their file itself cannot be processed."""

    jobs: list[IngestionJob]
    unfixable: list[Document]


class JobService:
    def __init__(
        self,
        database: Database,
        ingestion: IngestionService,
        settings: Settings,
        queue: JobQueue,
    ) -> None:
        self.database = database
        self.ingestion = ingestion
        self.settings = settings
        self.queue = queue
        queue.bind(self.run, self.sweep)

    async def accept(
        self,
        upload: UploadRequest,
        collection_id: str | None,
        *,
        create_collection: bool,
        asynchronous: bool,
    ) -> Accepted:
        """The one path of every upload route: process the file now, or store it and queue it."""
        if asynchronous and upload.api_key and self.ingestion.embedding_model.uses_api_keys:
            raise BadRequest(
                "api_key cannot be used with asynchronous uploads: keys are never stored, "
                "and a worker processes the file later; upload synchronously instead"
            )
        options = ProcessingOptions.from_request(
            self.settings, upload.chunk_size, upload.chunk_overlap, upload.metadata
        )
        async with received_upload(upload, self.settings.max_upload_bytes) as stored:
            if asynchronous:
                # Refused now, as a synchronous upload would be, not failed later.
                await self.ingestion.check_processable(stored)
                return await self._enqueue(stored, collection_id, options, create_collection)
            result = await self.ingestion.with_api_key(upload.api_key).ingest(
                stored, collection_id, options, create_collection=create_collection
            )
            return Accepted(result, job=None)

    async def accept_file(
        self, stored: StoredFile, collection_id: str, options: ProcessingOptions
    ) -> Accepted:
        """Queue a stored file's processing into a collection (OpenAI: add a file to a vector
        store). A file that cannot be processed is kept as a failed document, not refused."""
        async with self.database.read_session() as session:
            upload = await copy_to_disk(session, stored)
        try:
            try:
                await self.ingestion.check_processable(upload)
            except (UnsupportedMediaType, UnprocessableContent) as exc:
                refused = await self.ingestion.record_refused(upload, collection_id, options, exc)
                return Accepted(refused, job=None)
            return await self._enqueue(upload, collection_id, options, create_collection=False)
        finally:
            await asyncio.to_thread(upload.path.unlink, missing_ok=True)

    async def _enqueue(
        self,
        stored: StoredUpload,
        collection_id: str | None,
        options: ProcessingOptions,
        create_collection: bool,
    ) -> Accepted:
        """Store the file as a pending document and queue its processing."""
        async with self.database.session() as session:
            result = await self.ingestion.register(
                session, stored, collection_id, options, create_collection=create_collection
            )
            if result.already_processed:
                return Accepted(result, job=None)
            jobs = IngestionJobRepository(session)
            if result.in_flight:
                job = await jobs.active_for(result.document.id, result.document.generation)
                if job is not None:
                    return Accepted(result, job)
                # Pending with no job to finish it: register the upload anew.
                result = await self.ingestion.register(
                    session,
                    stored,
                    collection_id,
                    options,
                    create_collection=create_collection,
                    join_in_flight=False,
                )
            job = await self._new_job(session, result.document, options)
        await self.queue.defer(job.id)
        return Accepted(result, job)

    async def retry_document(self, collection_id: str, document_id: uuid.UUID) -> IngestionJob:
        """Queue a failed document again, from the bytes kept with it, as its next generation.

        The document row is locked, so concurrent retries queue one job: the others find it
        no longer failed (409).
        """
        async with self.database.session() as session:
            documents = DocumentRepository(session)
            document = await documents.lock_in_collection(collection_id, document_id)
            if document is None:
                raise NotFound(f"document {document_id} not found in collection {collection_id!r}")
            if document.status != DocumentStatus.FAILED:
                raise Conflict(f"document {document_id} is {document.status}, not failed")
            if not document.retryable:
                raise Conflict(
                    f"document {document_id} cannot be processed as it is ({document.error}); "
                    "a retry would fail the same way: upload a fixed file"
                )
            if not await DocumentFileRepository(session).has_file(document.id):
                raise Conflict(f"document {document_id} has no stored file: upload it again")
            # Failed documents are uploads: texts documents are always completed (CHECK).
            assert document.chunk_size is not None and document.chunk_overlap is not None
            document.generation += 1
            document.status, document.error, document.retryable = DocumentStatus.PENDING, None, None
            await session.flush()
            options = ProcessingOptions(
                document.chunk_size, document.chunk_overlap, document.metadata_
            )
            job = await self._new_job(session, document, options)
        await self.queue.defer(job.id)
        return job

    async def retry_failed(self, collection_id: str) -> RetriedFailures:
        """Queue every failed document of the collection that a retry can fix (the provider
        failed) and that still has its file; the others are counted, not queued."""
        async with self.database.session() as session:
            documents, _ = await DocumentRepository(session).list_page(collection_id, 100_000, 0)
            failed = [d for d in documents if d.status == DocumentStatus.FAILED]
        retried = RetriedFailures(jobs=[], unfixable=[d for d in failed if not d.retryable])
        for document in failed:
            if not document.retryable:
                continue
            try:
                retried.jobs.append(await self.retry_document(collection_id, document.id))
            except Conflict as exc:
                logger.warning("not retried: %s", exc.message)
        return retried

    async def list_jobs(
        self,
        session: AsyncSession,
        collection_id: str | None,
        state: JobState | None,
        page: tuple[int, int],
    ) -> tuple[Sequence[IngestionJob], int]:
        """Jobs newest first; `page` is (limit, offset)."""
        limit, offset = page
        return await IngestionJobRepository(session).list_page(collection_id, state, limit, offset)

    async def latest_for(
        self, session: AsyncSession, documents: Sequence[Document]
    ) -> dict[uuid.UUID, IngestionJob]:
        """Each of these documents' most recent job, for those that had one."""
        return await IngestionJobRepository(session).latest_for([d.id for d in documents])

    async def sweep(self) -> None:
        """What the workers do now and then besides jobs: requeue the lost ones, drop the
        chunk partitions of deleted collections and the staged tables of bulk loads cut
        short, and build the vector indexes, and add to their graphs the chunks, that a
        process which died left undone."""
        await self.requeue_lost()
        await drop_orphaned_partitions(self.database.engine)
        await drop_abandoned_stagings(self.database.engine, building_under_lease)
        await self.ingestion.index_builds.catch_up()

    async def requeue_lost(self) -> None:
        """Hand the queue again every job that is `queued` with no task to run it, so no job
        stays queued forever (a crash between committing a job and queuing it)."""
        async with self.database.read_session() as session:
            lost = await IngestionJobRepository(session).lost_in_queue(
                TASK, timedelta(seconds=self.settings.worker_stalled_after_seconds)
            )
        for job_id in lost:
            logger.warning("job %s was queued with no task to run it; queued again", job_id)
            await self.queue.defer(job_id)

    async def get(self, session: AsyncSession, job_id: uuid.UUID) -> IngestionJob:
        job = await IngestionJobRepository(session).get_one_or_none(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    async def run(self, job_id: uuid.UUID) -> None:
        """Process one queued job (called by a worker)."""
        claimed = await self._claim(job_id)
        if claimed is None:
            return
        version, prepared = claimed
        writer = _ProgressWriter(self.database, job_id)
        try:
            await writer.run(self.ingestion.process_version(version, prepared, writer))
        except VersionGone:
            logger.info("job %s: its document version is gone; nothing written", job_id)
            return
        except AppError as exc:
            await self._fail(job_id, prepared, version, exc)
            return
        except Exception as exc:
            failure = AppError(f"internal error: {type(exc).__name__}")
            # Not the file's fault, as far as anyone knows: worth a retry once fixed.
            failure.retryable = True
            await self._fail(job_id, prepared, version, failure)
            raise
        finally:
            prepared.stored.path.unlink(missing_ok=True)
        async with self.database.session() as session:
            await IngestionJobRepository(session).finish(job_id, JobState.SUCCEEDED)
        logger.info("job %s succeeded: %s", job_id, prepared.filename)

    async def _claim(self, job_id: uuid.UUID) -> tuple[DocumentVersion, PreparedUpload] | None:
        """Mark the job running and copy its version's bytes to a temporary file; None when
        there is nothing to do (finished, cancelled, superseded, or done before a crash)."""
        async with self.database.session() as session:
            jobs = IngestionJobRepository(session)
            seen = await jobs.get_one_or_none(job_id)
            if seen is None or seen.state in FINISHED_JOB_STATES or seen.document_id is None:
                return None
            version = DocumentVersion(seen.document_id, seen.generation)
            # The writers' lock order: the document before its jobs.
            document = await DocumentRepository(session).lock_version(
                version.document_id, version.generation
            )
            job = await jobs.lock_active(job_id)
            if job is None:
                return None
            if document is None:
                # The database ends the jobs of deleted and superseded versions itself;
                # a job row it could not reach ends here.
                await jobs.finish(job_id, JobState.CANCELLED, "the document version is gone")
                return None
            if document.status == DocumentStatus.COMPLETED:
                # A worker that died after committing the document: the work is done.
                await jobs.finish(job_id, JobState.SUCCEEDED)
                return None
            await jobs.start(job_id)
            document.status = DocumentStatus.PROCESSING
            options = ProcessingOptions(**job.options)
            stored = await self._file(session, document)
        try:
            prepared = await self.ingestion.prepare(stored, document.collection_id, options)
        except BaseException:
            stored.path.unlink(missing_ok=True)
            raise
        return version, prepared

    async def _new_job(
        self, session: AsyncSession, document: Document, options: ProcessingOptions
    ) -> IngestionJob:
        return await IngestionJobRepository(session).create(
            IngestionJob(
                document_id=document.id,
                collection_id=document.collection_id,
                filename=document.filename,
                generation=document.generation,
                options=asdict(options),
            )
        )

    async def _file(self, session: AsyncSession, document: Document) -> StoredUpload:
        """The document's stored bytes in a temporary file, for the parsers."""
        path = await copy_to_temporary(DocumentFileRepository(session).parts(document.id))
        # A job's document is an upload: only texts documents have no hash (CHECK).
        assert document.content_sha256 is not None
        return StoredUpload(
            path,
            document.filename,
            document.size_bytes,
            document.content_sha256,
            file_id=document.file_id,
        )

    async def _fail(
        self, job_id: uuid.UUID, prepared: PreparedUpload, version: DocumentVersion, error: AppError
    ) -> None:
        recorded = await self.ingestion.record_version_failure(
            prepared.collection_id, version, error
        )
        if not recorded:
            logger.info("job %s failed after its version was gone: %s", job_id, error.message)
            return
        async with self.database.session() as session:
            await IngestionJobRepository(session).finish(job_id, JobState.FAILED, error.message)
        logger.warning("job %s failed: %s", job_id, error.message)


class _ProgressWriter:
    """Takes progress from the ingestion and saves it every half second, in its own
    transaction, so it is visible while the ingestion's transaction is still open."""

    def __init__(self, database: Database, job_id: uuid.UUID) -> None:
        self.database = database
        self.job_id = job_id
        self.latest: IngestProgress | None = None
        self.saved: IngestProgress | None = None

    def __call__(self, progress: IngestProgress) -> None:
        self.latest = replace(progress)

    async def run(self, work: Awaitable[object]) -> None:
        saver = asyncio.create_task(self._save_periodically())
        try:
            await work
        finally:
            saver.cancel()
            await self._save()

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_SECONDS)
            await self._save()

    async def _save(self) -> None:
        if self.latest is None or self.latest == self.saved:
            return
        latest = self.latest
        async with self.database.session() as session:
            await IngestionJobRepository(session).save_progress(self.job_id, latest)
        self.saved = latest
