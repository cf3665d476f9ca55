"""The job queue: procrastinate on the same PostgreSQL, so no other infrastructure.

Workers (the server's in-process one, or `ragstore worker` on any machine)
take `ingest_document` jobs. Each worker sends heartbeats; every worker also
sweeps for jobs whose worker stopped sending them (killed, machine lost) and
puts them back in the queue, so another worker finishes them.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

import procrastinate
from procrastinate import PsycopgConnector
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

QUEUE = "ingestion"
TASK = "ingest_document"
JobRunner = Callable[[uuid.UUID], Awaitable[None]]
Sweep = Callable[[], Awaitable[None]]


def psycopg_conninfo(database_url: str) -> str:
    """The same database for psycopg (procrastinate's driver) as for asyncpg."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class JobQueue:
    def __init__(self, database_url: str, stalled_after_seconds: float) -> None:
        self.stalled_after_seconds = stalled_after_seconds
        self.app = procrastinate.App(
            connector=PsycopgConnector(
                # min_size=0: opening never waits for the database (start-up with it down).
                conninfo=psycopg_conninfo(database_url),
                min_size=0,
                max_size=4,
            )
        )
        self._runner: JobRunner | None = None
        self._sweep: Sweep | None = None

        @self.app.task(name=TASK, queue=QUEUE)
        async def ingest_document(job_id: str) -> None:
            assert self._runner is not None, "bind() a runner before working"
            await self._runner(uuid.UUID(job_id))

        self._ingest_document = ingest_document

    def bind(self, runner: JobRunner, sweep: Sweep | None = None) -> None:
        """What runs a job, and what else every sweep for lost work does."""
        self._runner = runner
        self._sweep = sweep

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def defer(self, job_id: uuid.UUID) -> int:
        return await self._ingest_document.defer_async(job_id=str(job_id))

    async def work(self, concurrency: int) -> None:
        """Process jobs until cancelled, and requeue the jobs of dead workers."""
        sweeper = asyncio.create_task(self._requeue_stalled_jobs())
        try:
            await self.app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=self.stalled_after_seconds / 3,
                stalled_worker_timeout=self.stalled_after_seconds,
                delete_jobs="successful",
            )
        finally:
            sweeper.cancel()

    async def _requeue_stalled_jobs(self) -> None:
        while True:
            await asyncio.sleep(self.stalled_after_seconds / 2)
            try:
                stalled = await self.app.job_manager.get_stalled_jobs(
                    queue=QUEUE, seconds_since_heartbeat=self.stalled_after_seconds
                )
                for job in stalled:
                    logger.warning("job %s lost its worker; queued again", job.id)
                    await self.app.job_manager.retry_job(job)
                if self._sweep is not None:
                    await self._sweep()
            except Exception:
                # A sweep that fails (database restarting) is tried again next time.
                logger.exception("could not requeue stalled jobs")
