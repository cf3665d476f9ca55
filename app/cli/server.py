from typing import Annotated

import typer
import uvicorn

from app.core.config import get_settings
from app.embeddings.factory import check_provider_installed
from app.web.server import server_config


def serve(
    host: Annotated[
        str, typer.Option(envvar="RAGSTORE_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="RAGSTORE_PORT", help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API (migrates the database first unless RAGSTORE_MIGRATE_ON_START=false)."""
    settings = get_settings()
    check_provider_installed(settings)
    config = server_config("app.main:create_app", settings, factory=True, host=host, port=port)
    uvicorn.Server(config).run()
