"""SQL for ingestion jobs."""

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import aliased

from app.db.models import ACTIVE_JOB_STATES, IngestionJob, JobState
from app.db.repository import RepositoryBase
from app.ingestion.progress import IngestProgress


class IngestionJobRepository(RepositoryBase[IngestionJob]):
    model = IngestionJob

    async def save_progress(self, job_id: uuid.UUID, progress: IngestProgress) -> None:
        await self.session.execute(
            update(IngestionJob)
            .where(IngestionJob.id == job_id)
            .values(
                units_parsed=progress.units_parsed,
                chunks_made=progress.chunks_made,
                chunks_embedded=progress.chunks_embedded,
                chunks_stored=progress.chunks_stored,
            )
        )

    async def lock_active(self, job_id: uuid.UUID) -> IngestionJob | None:
        """The job if it is queued or running, locked until the transaction ends."""
        return await self.session.scalar(
            select(IngestionJob)
            .where(IngestionJob.id == job_id, IngestionJob.state.in_(ACTIVE_JOB_STATES))
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def active_for(self, document_id: uuid.UUID, generation: int) -> IngestionJob | None:
        """The queued or running job of this document version, if there is one."""
        return await self.session.scalar(
            select(IngestionJob)
            .where(
                IngestionJob.document_id == document_id,
                IngestionJob.generation == generation,
                IngestionJob.state.in_(ACTIVE_JOB_STATES),
            )
            .order_by(IngestionJob.created_at)
            .limit(1)
        )

    async def list_page(
        self, collection_id: str | None, state: JobState | None, limit: int, offset: int
    ) -> tuple[Sequence[IngestionJob], int]:
        """Jobs newest first, of one collection and/or in one state if asked."""
        conditions = []
        if collection_id is not None:
            conditions.append(IngestionJob.collection_id == collection_id)
        if state is not None:
            conditions.append(IngestionJob.state == state)
        rows = await self.session.scalars(
            select(IngestionJob)
            .where(*conditions)
            .order_by(IngestionJob.created_at.desc(), IngestionJob.id)
            .limit(limit)
            .offset(offset)
        )
        total = await self.session.scalar(
            select(func.count()).select_from(IngestionJob).where(*conditions)
        )
        return rows.all(), total or 0

    async def latest_for(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, IngestionJob]:
        """Each document's most recent job, for those that have one."""
        if not document_ids:
            return {}
        # Ranked by a window, not DISTINCT ON: SQLAlchemy spells that differently in 2.0
        # (`.distinct(column)`) and 2.1 (`.ext(distinct_on(column))`), and both are allowed.
        ranked = (
            select(
                IngestionJob,
                func.row_number()
                .over(
                    partition_by=IngestionJob.document_id,
                    order_by=IngestionJob.created_at.desc(),
                )
                .label("newest_first"),
            )
            .where(IngestionJob.document_id.in_(document_ids))
            .subquery()
        )
        job = aliased(IngestionJob, ranked)
        rows = await self.session.scalars(select(job).where(ranked.c.newest_first == 1))
        return {job.document_id: job for job in rows if job.document_id is not None}

    async def start(self, job_id: uuid.UUID) -> None:
        await self.session.execute(
            update(IngestionJob)
            .where(IngestionJob.id == job_id)
            .values(state=JobState.RUNNING, attempts=IngestionJob.attempts + 1)
        )

    async def finish(self, job_id: uuid.UUID, state: JobState, error: str | None = None) -> bool:
        """End the job if it is still active: a job the database already ended (cancelled,
        superseded) keeps that end. False when it was no longer active."""
        finished = await self.session.execute(
            update(IngestionJob)
            .where(IngestionJob.id == job_id, IngestionJob.state.in_(ACTIVE_JOB_STATES))
            .values(state=state, error=error, finished_at=func.now())
            .returning(IngestionJob.id)
        )
        return finished.first() is not None

    async def lost_in_queue(self, queue_task: str, older_than: timedelta) -> list[uuid.UUID]:
        """Queued jobs with no task in the queue to run them (a crash between committing
        the job and handing it to the queue, or a task deleted by hand)."""
        rows = await self.session.scalars(
            text(
                """
                SELECT j.id FROM ingestion_jobs j
                WHERE j.state = 'queued' AND j.updated_at < now() - CAST(:older_than AS interval)
                  AND NOT EXISTS (
                      SELECT 1 FROM procrastinate_jobs p
                      WHERE p.task_name = :task AND p.status IN ('todo', 'doing')
                        AND p.args->>'job_id' = j.id::text)
                """
            ),
            {"older_than": older_than, "task": queue_task},
        )
        return list(rows)
