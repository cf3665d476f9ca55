"""How many embedding requests may be in flight: adaptive, so a rate-limited
provider gets fewer at once and a healthy one gets the configured number.

Additive increase, multiplicative decrease (as TCP does): a 429 halves the
limit; after as many successes in a row as the limit itself, it grows by one,
never past the configured maximum.
"""

import asyncio
import logging
from types import TracebackType

logger = logging.getLogger(__name__)


class AdaptiveLimit:
    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = maximum
        self._in_flight = 0
        self._successes = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> "AdaptiveLimit":
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def rate_limited(self) -> None:
        shrunk = max(1, self.limit // 2)
        if shrunk != self.limit:
            logger.info("embedding concurrency %d -> %d after a 429", self.limit, shrunk)
        self.limit, self._successes = shrunk, 0

    def succeeded(self) -> None:
        self._successes += 1
        if self.limit < self.maximum and self._successes >= self.limit:
            self.limit, self._successes = self.limit + 1, 0
            logger.info("embedding concurrency back up to %d", self.limit)
