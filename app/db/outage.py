"""Which database errors are not the caller's doing: an outage, or text PostgreSQL cannot hold.

The web edge maps these to 503 and 422; knowing asyncpg's and SQLAlchemy's
exception types is this module's job, so nothing above `db/` needs to.
"""

import traceback

import asyncpg
from sqlalchemy.exc import DBAPIError

DATABASE_BUSY = "the server is busy: every database connection is in use; retry shortly"
DATABASE_UNAVAILABLE = "database unavailable: PostgreSQL is not answering; try again shortly"
# The server refuses connections while it shuts down or starts (57P03), ended ours
# when it stopped (57P01-57P02), or the connection itself failed (08xxx).
_DRIVER_OUTAGE_ERRORS = (
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.PostgresConnectionError,
)

# PostgreSQL's text and jsonb cannot hold U+0000, and refuse it wherever in a request
# it came (a path, a name, a query): 22021 in text, 22P05 in jsonb. A 422, not a 500.
TEXT_WITH_NUL = "text must not contain NUL (\\u0000) characters: PostgreSQL cannot store them"
_DRIVER_NUL_ERRORS = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


def _driver_error(exc: DBAPIError) -> BaseException | None:
    return exc.orig.__cause__ if exc.orig is not None else None


def is_database_outage(exc: BaseException) -> bool:
    """PostgreSQL is down, restarting or dropped the connection: not the caller's
    doing, and over once it is back (the pool's pre-ping replaces broken connections)."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(_driver_error(exc), _DRIVER_OUTAGE_ERRORS)
    # A connect that failed at the socket (no server, refused, timed out) surfaces
    # unwrapped; only OSErrors raised inside the driver mean the database.
    return isinstance(exc, OSError) and any(
        frame.f_globals.get("__name__", "").startswith("asyncpg")
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def is_lock_wait_cut_short(exc: BaseException) -> bool:
    """A statement gave up waiting for a lock: its lock_timeout passed, or PostgreSQL chose
    it to break a deadlock. The transaction is lost; a new one may succeed."""
    return isinstance(exc, DBAPIError) and isinstance(
        _driver_error(exc), (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError)
    )


def is_text_with_nul(exc: BaseException) -> bool:
    """PostgreSQL refused a NUL character somewhere in the statement's text or jsonb."""
    return isinstance(exc, DBAPIError) and isinstance(_driver_error(exc), _DRIVER_NUL_ERRORS)
