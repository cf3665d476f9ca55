"""Is the service able to answer? Today that means: is PostgreSQL reachable."""

import asyncio
import logging

from app.core.errors import ServiceUnavailable
from app.db.database import Database
from app.health.repository import HealthRepository

logger = logging.getLogger(__name__)

DATABASE_PING_TIMEOUT_SECONDS = 5.0


async def check_database(database: Database) -> None:
    """Raise ServiceUnavailable, with the reason, when the database does not answer."""
    try:
        async with asyncio.timeout(DATABASE_PING_TIMEOUT_SECONDS):
            async with database.session() as session:
                await HealthRepository(session).ping()
    except TimeoutError as exc:
        raise ServiceUnavailable(
            f"database did not answer within {DATABASE_PING_TIMEOUT_SECONDS:g} s"
        ) from exc
    except Exception as exc:
        logger.warning("health check: database unreachable: %s", exc)
        raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}: {exc}") from exc
