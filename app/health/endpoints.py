from importlib.metadata import version

from fastapi import APIRouter

from app.db.dependencies import DatabaseDep
from app.health.schemas import HealthResponse
from app.health.service import check_database
from app.web.dependencies import SettingsDep
from app.web.errors import error_responses

router = APIRouter(tags=["health"])


@router.get(
    "/api/health",
    summary="Service and database health",
    responses=error_responses({503: "The database is unreachable"}),
)
async def health(database: DatabaseDep, settings: SettingsDep) -> HealthResponse:
    """Report `ok` when PostgreSQL answers; 503 with the reason otherwise."""
    await check_database(database)
    return HealthResponse(
        status="ok",
        database="ok",
        embedding_provider=settings.embedding_provider,
        embedding_model=settings.embedding_model,
        version=version("ragstore"),
    )
