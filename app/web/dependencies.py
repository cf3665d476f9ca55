"""Typed dependencies every router shares, named once and reused.

They are `async def` although none of them awaits: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop per dependency per request
(benchmark 4's HTTP overhead)."""

from typing import Annotated

from fastapi import Depends, Header, Query, Request

from app.core.config import Settings
from app.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """What the lifespan opened: database, clients and services."""
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def wants_async(
    wait: Annotated[
        bool, Query(description="false: answer 202 with a job as soon as the file is stored")
    ] = True,
    prefer: Annotated[str | None, Header(description="`respond-async` as wait=false")] = None,
) -> bool:
    """Whether the client asked to be answered before processing finishes."""
    return not wait or (prefer is not None and "respond-async" in prefer.lower())


AsyncRequestedDep = Annotated[bool, Depends(wants_async)]

# PostgreSQL's OFFSET is a bigint: a larger number would fail in the driver, as a 500.
MAX_OFFSET = 2**63 - 1
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
