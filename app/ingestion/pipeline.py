"""Parse → chunk → embed → store, into the processed-document cache.

No transaction is open while the model provider works: each slice of chunks
is embedded first and then written in a short transaction of its own. The
chunks are staged in the cache entry of the content (`processed_documents`,
`processed_chunks`), which is `building` until its last slice is stored; the
document's own chunks are copied from it, inside PostgreSQL, in the one
transaction that makes the new version current (see `service.py`).

Two uploads of the same content share one entry: the first claims it and
builds it, renewing its lease while it works; the others wait for it to be
`complete` (no connection held), or take it over when its lease runs out
because its builder died.
"""

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice

from app.core.config import Settings
from app.core.errors import UnprocessableContent
from app.db.database import Database
from app.db.models import CacheState, ProcessedDocument
from app.document.metadata import copied_bytes
from app.embeddings.base import EmbeddingModel
from app.ingestion.prepared import PreparedUpload
from app.ingestion.progress import BuildObserver, IngestProgress, ProgressCallback, counted
from app.ingestion.repository import ProcessedDocumentRepository
from app.ingestion.upload import StoredUpload
from app.processing.chunking import chunk_units
from app.processing.parsers import ParseLimits, parse_document
from app.processing.units import ChunkDraft, DocumentType

logger = logging.getLogger(__name__)

# How often an upload that waits for another's entry looks again.
WAIT_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class BuiltEntry:
    """A complete cache entry: its chunk count, and whether an earlier upload built it."""

    cache_key: str
    chunk_count: int
    from_cache: bool


class LeaseLost(Exception):
    """Another upload took over the entry (this builder was too slow); start again."""


@dataclass
class _SliceStore:
    """Embeds a slice of an entry's chunks and stores each part of it in the entry as its
    answer arrives, while the others are still out: the connection is held for the COPY
    only, never while a call is waiting."""

    pipeline: "ProcessingPipeline"
    entry_key: str
    builder: uuid.UUID
    progress: IngestProgress
    on_progress: ProgressCallback
    observer: BuildObserver | None

    async def embed_and_store(self, batch: list[ChunkDraft]) -> None:
        texts = [draft.text for draft in batch]
        model = self.pipeline.embedding_model
        async with contextlib.aclosing(model.embedded_parts(texts)) as parts:
            async for start, vectors in parts:
                self.progress.chunks_embedded += len(vectors)
                self.on_progress(self.progress)
                rows = [
                    (self.entry_key, draft.index, draft.text, json.dumps(draft.metadata), vector)
                    for draft, vector in zip(
                        batch[start : start + len(vectors)], vectors, strict=True
                    )
                ]
                async with self.pipeline.database.session() as session:
                    cache = ProcessedDocumentRepository(session)
                    if not await cache.renew(self.entry_key, self.builder, self.pipeline.lease):
                        raise LeaseLost(self.entry_key)
                    await cache.copy_chunks(rows)
                self.progress.chunks_stored += len(rows)
                self.on_progress(self.progress)
                if self.observer is not None:
                    first = batch[start].index
                    self.observer.stored(
                        self.builder, range(first, first + len(rows)), self.progress.chunks_made
                    )


class ProcessingPipeline:
    def __init__(
        self, database: Database, embedding_model: EmbeddingModel, settings: Settings
    ) -> None:
        self.database = database
        self.embedding_model = embedding_model
        self.settings = settings
        # A builder that stops renewing its claim for this long (killed, machine lost) is
        # taken over: the same bound as for a job whose worker stopped sending heartbeats.
        self.lease = timedelta(seconds=settings.worker_stalled_after_seconds)

    async def build(
        self,
        prepared: PreparedUpload,
        entry_key: str,
        on_progress: ProgressCallback,
        observer: BuildObserver | None = None,
    ) -> BuiltEntry:
        """The complete cache entry `entry_key` for the upload: built here, or by another.

        `observer` hears how a build here goes: once the chunker is done, which is usually
        long before the chunks are embedded, as each part is stored, and before the end.
        """
        while True:
            builder = uuid.uuid4()
            entry = ProcessedDocument(
                cache_key=entry_key,
                content_sha256=prepared.stored.sha256,
                chunk_size=prepared.options.chunk_size,
                chunk_overlap=prepared.options.chunk_overlap,
                embedding_model=self.embedding_model.model,
            )
            async with self.database.session() as session:
                claim = await ProcessedDocumentRepository(session).claim(entry, builder, self.lease)
            if claim.state == CacheState.COMPLETE and not claim.claimed:
                on_progress(
                    IngestProgress(0, claim.chunk_count, claim.chunk_count, claim.chunk_count)
                )
                return BuiltEntry(entry_key, claim.chunk_count, from_cache=True)
            if not claim.claimed:
                await asyncio.sleep(WAIT_POLL_SECONDS)
                continue
            try:
                async with self._heartbeat(entry_key, builder):
                    count = await self._fill(prepared, entry_key, builder, on_progress, observer)
            except LeaseLost:
                logger.warning("cache entry %s was taken over; building again", entry_key)
                continue
            except BaseException:
                await self._abandon(entry_key, builder)
                raise
            return BuiltEntry(entry_key, count, from_cache=False)

    async def check_readable(self, upload: StoredUpload, document_type: DocumentType) -> None:
        """Parse just far enough to know the file opens, is not encrypted and has text."""

        def first_unit() -> object:
            return next(parse_document(upload.path, document_type, self._limits()), None)

        if await asyncio.to_thread(first_unit) is None:
            raise UnprocessableContent(no_text(upload.filename, document_type))

    def _limits(self) -> ParseLimits:
        return ParseLimits(
            max_unpacked_bytes=int(self.settings.max_unpacked_mb * 1024 * 1024),
            max_pdf_pages=self.settings.max_pdf_pages,
            max_csv_columns=self.settings.max_csv_columns,
        )

    async def _fill(
        self,
        prepared: PreparedUpload,
        entry_key: str,
        builder: uuid.UUID,
        on_progress: ProgressCallback,
        observer: BuildObserver | None,
    ) -> int:
        progress = IngestProgress()
        units = counted(
            parse_document(prepared.stored.path, prepared.document_type, self._limits()), progress
        )
        drafts = chunk_units(units, prepared.options.splitter())
        store = _SliceStore(self, entry_key, builder, progress, on_progress, observer)
        chunked = observer.chunked if observer is not None else None

        # A slice is one call's worth of chunks, spread over the concurrent calls (never
        # under 64 inputs each), and as many slices are embedded at once as calls are
        # allowed, so that every allowed call is busy however the slices split. The first
        # calls leave once the first slice is chunked, not the first 8,192 chunks, and the
        # answers, smaller, arrive spread out rather than four at once: a 4 MB text
        # (10,886 chunks) answered in 4.16 s against 4.45 s on 2 cores (benchmark 1b,
        # session 22, medians of 4 alternating runs).
        slice_size = self.settings.embedding_batch_size
        slices_in_flight = self.settings.embedding_concurrency
        most_chunks = self._most_chunks(prepared)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            async with contextlib.aclosing(_slices_ahead(drafts, slice_size)) as slices:
                async for batch in slices:
                    progress.chunks_made += len(batch)
                    if progress.chunks_made > most_chunks:
                        # Refused before the slice is embedded: nothing is spent on it.
                        raise UnprocessableContent(
                            f"{prepared.stored.filename} makes more than {most_chunks:,} "
                            f"chunks with chunk_size {prepared.options.chunk_size} and its "
                            "metadata (RAGSTORE_MAX_CHUNKS_PER_DOCUMENT, "
                            "RAGSTORE_MAX_COPIED_METADATA_MB); use a larger chunk_size or "
                            "less metadata"
                        )
                    on_progress(progress)
                    if chunked is not None and len(batch) < slice_size:
                        chunked(progress.chunks_made)  # the chunker is done: a short slice
                        chunked = None
                    # The next slice's calls queue behind this one's, on the model's
                    # concurrency limit, and each starts as one of this slice's calls ends:
                    # no slice waits for the slowest call of the one before.
                    in_flight.add(asyncio.create_task(store.embed_and_store(batch)))
                    if len(in_flight) >= slices_in_flight:
                        done, in_flight = await asyncio.wait(
                            in_flight, return_when=asyncio.FIRST_COMPLETED
                        )
                        for task in done:
                            task.result()  # its error, if any
            while in_flight:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        count = progress.chunks_stored
        if count == 0:
            raise UnprocessableContent(no_text(prepared.stored.filename, prepared.document_type))
        if chunked is not None:
            chunked(count)  # every slice was full: the chunker's end showed as an empty one
        if observer is not None:
            await observer.before_complete(builder)
        async with self.database.session() as session:
            if not await ProcessedDocumentRepository(session).complete(entry_key, builder, count):
                raise LeaseLost(entry_key)
        return count

    @asynccontextmanager
    async def _heartbeat(self, entry_key: str, builder: uuid.UUID) -> AsyncIterator[None]:
        """Renew the claim three times per lease while the block runs (a slice may take
        longer than a lease to embed)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease.total_seconds() / 3)
                try:
                    async with self.database.session() as session:
                        await ProcessedDocumentRepository(session).renew(
                            entry_key, builder, self.lease
                        )
                except Exception:
                    # A missed renewal is retried; the slices check the claim themselves.
                    logger.exception("could not renew the claim on cache entry %s", entry_key)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _most_chunks(self, prepared: PreparedUpload) -> int:
        """The chunk cap, lowered so the metadata copied into every chunk stays bounded."""
        metadata_bytes = copied_bytes(prepared.options.metadata)
        budget = int(self.settings.max_copied_metadata_mb * 1024 * 1024)
        by_metadata = budget // metadata_bytes if metadata_bytes else budget
        return min(self.settings.max_chunks_per_document, by_metadata)

    async def _abandon(self, entry_key: str, builder: uuid.UUID) -> None:
        """Drop a half-built entry at once, so nobody waits for its lease to run out."""
        try:
            async with self.database.session() as session:
                await ProcessedDocumentRepository(session).abandon(entry_key, builder)
        except Exception:
            logger.exception("could not drop the half-built cache entry %s", entry_key)


def no_text(filename: str, document_type: DocumentType) -> str:
    if document_type == DocumentType.PDF:
        # Pages that are only images: a scan, most likely.
        return f"no extractable text in {filename} (a scanned PDF? OCR is not supported)"
    return f"no extractable text in {filename}"


def _take(drafts: Iterator[ChunkDraft], size: int) -> list[ChunkDraft]:
    return list(islice(drafts, size))


async def _slices_ahead(
    drafts: Iterator[ChunkDraft], size: int
) -> AsyncGenerator[list[ChunkDraft]]:
    """The drafts in slices of `size`, each parsed and chunked in a thread while the caller
    embeds the one before: the slices' calls used to wait for it (0.3 s for a slice of
    8,192 chunks, benchmark 1b, 4 MB). Left early, it lets the slice in the making end,
    so that nothing runs the parser once the caller is gone."""
    ahead = asyncio.ensure_future(asyncio.to_thread(_take, drafts, size))
    try:
        while batch := await ahead:
            ahead = asyncio.ensure_future(asyncio.to_thread(_take, drafts, size))
            yield batch
    finally:
        await asyncio.gather(ahead, return_exceptions=True)
