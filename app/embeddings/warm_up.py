"""Loading the embedding model before the first request needs it.

A local model takes seconds to load, and its first inference is slower than
the rest. The server starts loading it as it starts, in the background (it
answers health checks meanwhile), and says so: `model: "loading"` in
`/api/health`, and `/api/ready` answers 503 until it is done, so a load
balancer sends no search to a server that would make it wait.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from app.embeddings.base import EmbeddingModel

logger = logging.getLogger(__name__)

ModelState = Literal["loading", "ready", "failed"]


class ModelWarmUp:
    """`then` runs once the model is ready, best effort: the server uses it to open a
    read connection and compile its search statements, so the first search after ready
    does not pay for them (benchmark first_search: 34 ms, against 110 ms without)."""

    def __init__(
        self, model: EmbeddingModel, then: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.model = model
        self.then = then
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._warm_up())

    @property
    def state(self) -> ModelState:
        if self._task is None or not self._task.done():
            return "loading"
        if self._task.cancelled() or self._task.exception() is not None:
            return "failed"
        return "ready"

    async def _warm_up(self) -> None:
        started = time.perf_counter()
        try:
            await self.model.warm_up()
        except Exception:
            # Requests will try again (and say why); the server stays up meanwhile.
            logger.exception("could not load the embedding model %s", self.model.model)
            raise
        if self.then is not None:
            try:
                await self.then()
            except Exception:
                # Only a head start is lost: the first search does this work itself.
                logger.warning("could not warm up searches", exc_info=True)
        logger.info(
            "embedding model %s ready in %.1f s", self.model.model, time.perf_counter() - started
        )

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            # Its failure, if any, was logged when it happened.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
