"""Background ingestion: queue an upload now, process it on any worker, report progress.

A job never shows twice: the ingestion itself is exactly-once (advisory lock,
one transaction, the cache), so a job retried after its worker died finishes
the one document the first attempt left `pending`.
"""

import asyncio
import logging
import tempfile
import uuid
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import AppError, BadRequest, Conflict, NotFound
from app.db.database import Database
from app.db.models import FINISHED_JOB_STATES, Document, DocumentStatus, IngestionJob, JobState
from app.document.repository import DocumentFileRepository, DocumentRepository
from app.embeddings.errors import EmbeddingFailed
from app.ingestion.progress import IngestProgress
from app.ingestion.service import IngestionService, IngestResult, ProcessingOptions
from app.ingestion.upload import StoredUpload, UploadRequest, received_upload
from app.jobs.queue import JobQueue
from app.jobs.repository import IngestionJobRepository

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class Accepted:
    """What an upload route answers with: the document, and its job when it was queued."""

    result: IngestResult
    job: IngestionJob | None


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
        queue.bind(self.run)

    async def accept(
        self,
        upload: UploadRequest,
        collection_id: str | None,
        *,
        create_collection: bool,
        asynchronous: bool,
    ) -> Accepted:
        """The one path of every upload route: process the file now, or store it and queue it."""
        if asynchronous and upload.api_key:
            raise BadRequest(
                "api_key cannot be used with asynchronous uploads: keys are never stored, "
                "and a worker processes the file later; upload synchronously instead"
            )
        options = ProcessingOptions.from_request(
            self.settings, upload.chunk_size, upload.chunk_overlap, upload.metadata
        )
        async with received_upload(upload, self.settings.max_upload_bytes) as stored:
            if asynchronous:
                return await self._enqueue(stored, collection_id, options, create_collection)
            result = await self.ingestion.with_api_key(upload.api_key).ingest(
                stored, collection_id, options, create_collection=create_collection
            )
            return Accepted(result, job=None)

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
            job = await self._new_job(session, result.document, options)
        await self.queue.defer(job.id)
        return Accepted(result, job)

    async def retry_document(self, collection_id: str, document_id: uuid.UUID) -> IngestionJob:
        """Queue a failed document again, from the bytes kept with it."""
        async with self.database.session() as session:
            document = await DocumentRepository(session).get_in_collection(
                collection_id, document_id
            )
            if document is None:
                raise NotFound(f"document {document_id} not found in collection {collection_id!r}")
            if document.status != DocumentStatus.FAILED:
                raise Conflict(f"document {document_id} is {document.status}, not failed")
            if not await DocumentFileRepository(session).has_file(document.id):
                raise Conflict(f"document {document_id} has no stored file: upload it again")
            document.status, document.error = DocumentStatus.PENDING, None
            options = ProcessingOptions(
                document.chunk_size, document.chunk_overlap, document.metadata_
            )
            job = await self._new_job(session, document, options)
        await self.queue.defer(job.id)
        return job

    async def retry_failed(self, collection_id: str) -> list[IngestionJob]:
        """Queue every failed document of the collection that still has its file."""
        async with self.database.session() as session:
            documents, _ = await DocumentRepository(session).list_page(collection_id, 100_000, 0)
            failed = [d.id for d in documents if d.status == DocumentStatus.FAILED]
        jobs = []
        for document_id in failed:
            try:
                jobs.append(await self.retry_document(collection_id, document_id))
            except Conflict as exc:
                logger.warning("not retried: %s", exc.message)
        return jobs

    async def get(self, session: AsyncSession, job_id: uuid.UUID) -> IngestionJob:
        job = await IngestionJobRepository(session).get_one_or_none(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    async def run(self, job_id: uuid.UUID) -> None:
        """Process one queued job (called by a worker)."""
        async with self.database.session() as session:
            job = await IngestionJobRepository(session).get_one_or_none(job_id)
            if job is None or job.state in FINISHED_JOB_STATES:
                return
            document = await DocumentRepository(session).get_one_or_none(job.document_id)
            assert document is not None
            if document.status == DocumentStatus.COMPLETED:
                # Concurrent uploads of one file each queue a job; the first to run
                # did the work and freed the bytes, so the others have nothing to do.
                await IngestionJobRepository(session).finish(job_id, JobState.SUCCEEDED)
                return
            job.state, job.attempts = JobState.RUNNING, job.attempts + 1
            options = ProcessingOptions(**job.options)
            stored = await self._file(session, document)
        writer = _ProgressWriter(self.database, job_id)
        try:
            await writer.run(self._ingest(stored, document, options, writer))
        except AppError as exc:
            await self._fail(job_id, document, exc)
            return
        except Exception as exc:
            await self._fail(job_id, document, AppError(f"internal error: {type(exc).__name__}"))
            raise
        finally:
            stored.path.unlink(missing_ok=True)
        async with self.database.session() as session:
            await IngestionJobRepository(session).finish(job_id, JobState.SUCCEEDED)

    async def _ingest(
        self,
        stored: StoredUpload,
        document: Document,
        options: ProcessingOptions,
        writer: "_ProgressWriter",
    ) -> None:
        await self.ingestion.ingest(
            stored, document.collection_id, options, create_collection=True, on_progress=writer
        )

    async def _new_job(
        self, session: AsyncSession, document: Document, options: ProcessingOptions
    ) -> IngestionJob:
        return await IngestionJobRepository(session).create(
            IngestionJob(document_id=document.id, options=asdict(options))
        )

    async def _file(self, session: AsyncSession, document: Document) -> StoredUpload:
        """The document's stored bytes in a temporary file, for the parsers."""
        handle = tempfile.NamedTemporaryFile(prefix="ragstore-job-", delete=False)  # noqa: SIM115
        path = Path(handle.name)
        try:
            async for block in DocumentFileRepository(session).parts(document.id):
                await asyncio.to_thread(handle.write, block)
        finally:
            await asyncio.to_thread(handle.close)
        return StoredUpload(path, document.filename, document.size_bytes, document.content_sha256)

    async def _fail(self, job_id: uuid.UUID, document: Document, error: AppError) -> None:
        async with self.database.session() as session:
            if not isinstance(error, EmbeddingFailed):
                # An embedding failure was recorded by the ingestion itself.
                failed = await DocumentRepository(session).get_one_or_none(document.id)
                if failed is not None:
                    failed.status, failed.error = DocumentStatus.FAILED, error.message
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

    async def run(self, work: Awaitable[None]) -> None:
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
