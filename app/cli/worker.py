"""`ragstore worker`: process background jobs, on this machine or any other."""

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from app.cli.runtime import console, run
from app.runtime import Runtime


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Jobs at once (default RAGSTORE_WORKER_CONCURRENCY).", min=1),
    ] = None,
) -> None:
    """Process queued uploads (those sent with wait=false) until stopped with Ctrl-C or SIGTERM.
    Run as many as you like, on any machine that reaches the same DATABASE_URL."""

    async def work(runtime: Runtime) -> None:
        current = asyncio.current_task()
        assert current is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
        jobs_at_once = concurrency or runtime.settings.worker_concurrency
        console.print(f"worker started: {jobs_at_once} jobs at once; stop with Ctrl-C")
        with contextlib.suppress(asyncio.CancelledError):
            await runtime.queue.work(jobs_at_once)

    run(work)
