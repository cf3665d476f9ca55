"""The database for a request: one session per request, or a read session for routes that
only read. The only module under `db/` that knows about FastAPI."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.database import Database


async def get_database(request: Request) -> Database:
    """The Database the app's lifespan opened (`app.state.database`)."""
    database = request.app.state.database
    assert isinstance(database, Database)
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the route succeeds, rolled back otherwise."""
    async with database.session() as session:
        yield session


async def get_read_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read (search): autocommit, no transaction."""
    async with database.read_session() as session:
        yield session


# Scope "function": the commit happens before the response is sent, so a client that
# got its 201 can read what it wrote, and a failed commit is never answered as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
# Scope "function" as well: the connection goes back to the pool before the response is sent.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
