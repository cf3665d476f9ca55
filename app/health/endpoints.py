from importlib.metadata import version

from fastapi import APIRouter

from app.core.errors import ServiceUnavailable
from app.db.dependencies import DatabaseDep
from app.health.schemas import HealthResponse, ReadyResponse
from app.health.service import check_database
from app.web.dependencies import RuntimeDep
from app.web.errors import error_responses

router = APIRouter(tags=["health"])


@router.get(
    "/api/health",
    summary="Service and database health",
    responses=error_responses({503: "The database is unreachable"}),
)
async def health(database: DatabaseDep, runtime: RuntimeDep) -> HealthResponse:
    """Report `ok` when PostgreSQL answers (503 with the reason otherwise), and whether
    the embedding model is loaded yet."""
    await check_database(database)
    return HealthResponse(
        status="ok",
        database="ok",
        embedding_provider=runtime.settings.embedding_provider,
        embedding_model=runtime.embedding_model.model,
        embedding_dimensions=runtime.embedding_model.dimensions,
        model=runtime.model_warm_up.state,
        version=version("ragstore"),
    )


@router.get(
    "/api/ready",
    summary="Ready to serve searches and uploads",
    responses=error_responses(
        {503: "Still loading the embedding model, or the database is unreachable"}
    ),
)
async def ready(database: DatabaseDep, runtime: RuntimeDep) -> ReadyResponse:
    """200 once the database answers and the embedding model is loaded; 503 with
    `Retry-After` before (for load balancers and orchestrators)."""
    await check_database(database)
    state = runtime.model_warm_up.state
    if state != "ready":
        raise ServiceUnavailable(
            f"the embedding model {runtime.embedding_model.model} is {state}"
            + (": see the server log" if state == "failed" else ""),
            headers={"Retry-After": "1"},
        )
    return ReadyResponse(status="ready")
