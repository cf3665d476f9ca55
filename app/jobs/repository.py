"""SQL for ingestion jobs."""

import uuid

from sqlalchemy import func, update

from app.db.models import IngestionJob, JobState
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

    async def finish(self, job_id: uuid.UUID, state: JobState, error: str | None = None) -> None:
        await self.session.execute(
            update(IngestionJob)
            .where(IngestionJob.id == job_id)
            .values(state=state, error=error, finished_at=func.now())
        )
