from typing import Annotated

import typer
import uvicorn

from app.core.config import get_settings


def serve(
    host: Annotated[
        str, typer.Option(envvar="RAGSTORE_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="RAGSTORE_PORT", help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API (migrates the database first unless RAGSTORE_MIGRATE_ON_START=false)."""
    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
    )
