"""Typed dependencies, named once and reused by every route.

They are `async def` although none of them awaits: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop per dependency per request
(benchmark 4's HTTP overhead)."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.database import Database
from app.ingestion.service import IngestionService
from app.jobs.service import JobService
from app.llm.client import LLMClients
from app.runtime import Runtime
from app.search.service import SearchService


async def get_runtime(request: Request) -> Runtime:
    """What the lifespan opened: database, clients and services."""
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def get_database(runtime: RuntimeDep) -> Database:
    return runtime.database


async def get_llm_clients(runtime: RuntimeDep) -> LLMClients:
    return runtime.llm_clients


async def get_ingestion_service(runtime: RuntimeDep) -> IngestionService:
    return runtime.ingestion


async def get_search_service(runtime: RuntimeDep) -> SearchService:
    return runtime.search


async def get_job_service(runtime: RuntimeDep) -> JobService:
    return runtime.jobs


async def wants_async(
    wait: Annotated[
        bool, Query(description="false: answer 202 with a job as soon as the file is stored")
    ] = True,
    prefer: Annotated[str | None, Header(description="`respond-async` as wait=false")] = None,
) -> bool:
    """Whether the client asked to be answered before processing finishes."""
    return not wait or (prefer is not None and "respond-async" in prefer.lower())


# PostgreSQL's OFFSET is a bigint: a larger number would fail in the driver, as a 500.
MAX_OFFSET = 2**63 - 1
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the route succeeds, rolled back otherwise."""
    async with runtime.database.session() as session:
        yield session


async def get_read_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read (search): autocommit, no transaction."""
    async with runtime.database.read_session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
LLMClientsDep = Annotated[LLMClients, Depends(get_llm_clients)]
IngestionDep = Annotated[IngestionService, Depends(get_ingestion_service)]
SearchDep = Annotated[SearchService, Depends(get_search_service)]
# Scope "function": the commit happens before the response is sent, so a client that
# got its 201 can read what it wrote, and a failed commit is never answered as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
# Scope "function" as well: the connection goes back to the pool before the response is sent.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
JobsDep = Annotated[JobService, Depends(get_job_service)]
AsyncRequestedDep = Annotated[bool, Depends(wants_async)]
