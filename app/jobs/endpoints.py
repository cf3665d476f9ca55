import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.db.database import Database
from app.db.dependencies import DatabaseDep, ReadSessionDep
from app.db.models import FINISHED_JOB_STATES, JobState
from app.jobs.dependencies import JobsDep
from app.jobs.schemas import JobPage, JobRead
from app.jobs.service import JobService
from app.web.dependencies import Offset
from app.web.errors import INVALID_REQUEST, error_responses

router = APIRouter(tags=["jobs"], responses=INVALID_REQUEST)
_JOB_NOT_FOUND = error_responses({404: "No such job"})

POLL_SECONDS = 0.5
# A progress stream ends by itself after this long, even if the job has not.
MAX_STREAM_SECONDS = 3600


@router.get("/api/jobs", summary="List background jobs")
async def list_jobs(
    session: ReadSessionDep,
    jobs: JobsDep,
    collection_id: Annotated[
        str | None, Query(description="Only the jobs of uploads into this collection")
    ] = None,
    state: Annotated[JobState | None, Query(description="Only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> JobPage:
    """Jobs newest first, with their state and progress; a job outlives its document."""
    found, total = await jobs.list_jobs(session, collection_id, state, (limit, offset))
    return JobPage(
        data=[JobRead.model_validate(job) for job in found],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/api/jobs/{job_id}", summary="Get a job", responses=_JOB_NOT_FOUND)
async def get_job(job_id: uuid.UUID, session: ReadSessionDep, jobs: JobsDep) -> JobRead:
    """A background ingestion: its state and how far it has got."""
    return JobRead.model_validate(await jobs.get(session, job_id))


@router.get(
    "/api/jobs/{job_id}/events",
    summary="Stream a job's progress",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`progress` events, then `succeeded` or `failed`: each a job as JSON",
        },
        **_JOB_NOT_FOUND,
    },
)
async def job_events(
    job_id: uuid.UUID, session: ReadSessionDep, jobs: JobsDep, database: DatabaseDep
) -> EventSourceResponse:
    """Server-sent `progress` events as the job advances, then `succeeded` or `failed`."""
    await jobs.get(session, job_id)
    return EventSourceResponse(_progress_events(jobs, database, job_id), ping=15)


async def _progress_events(
    jobs: JobService, database: Database, job_id: uuid.UUID
) -> AsyncIterator[ServerSentEvent]:
    last = None
    deadline = asyncio.get_running_loop().time() + MAX_STREAM_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        async with database.read_session() as session:
            job = JobRead.model_validate(await jobs.get(session, job_id))
        snapshot = job.model_dump_json(exclude={"updated_at"})
        if job.state in FINISHED_JOB_STATES:
            yield ServerSentEvent(event=job.state, data=job.model_dump_json())
            return
        if snapshot != last:
            yield ServerSentEvent(event="progress", data=job.model_dump_json())
            last = snapshot
        await asyncio.sleep(POLL_SECONDS)


@router.post(
    "/api/collections/{collection_id}/documents/{document_id}/retry",
    summary="Process a failed document again",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        {
            404: "No such collection or document",
            409: "Not failed, or its file is no longer stored",
        }
    ),
)
async def retry_document(collection_id: str, document_id: uuid.UUID, jobs: JobsDep) -> JobRead:
    """Queue a failed document again from its stored file; follow the returned job."""
    job = await jobs.retry_document(collection_id, document_id)
    return JobRead.model_validate(job)
