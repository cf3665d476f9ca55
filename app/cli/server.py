import asyncio
import os
from typing import Annotated

import typer
import uvicorn

from app.core.config import Settings, get_settings
from app.db.database import Database
from app.db.migrate import upgrade
from app.embeddings.factory import check_provider_installed
from app.web.server import server_config, server_options


def serve(
    host: Annotated[
        str, typer.Option(envvar="RAGSTORE_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="RAGSTORE_PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            envvar="RAGSTORE_WEB_WORKERS",
            min=1,
            help="Server processes sharing the port: parsing, embedding responses and "
            "writes of concurrent requests then use every core.",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (migrates the database first unless RAGSTORE_MIGRATE_ON_START=false)."""
    settings = get_settings()
    check_provider_installed(settings)
    if workers == 1:
        config = server_config("app.main:create_app", settings, factory=True, host=host, port=port)
        uvicorn.Server(config).run()
        return
    # The schema is migrated here, once, not by every process at the same time; this
    # process keeps its share of the embedded server while the workers serve.
    database = asyncio.run(_migrated(settings))
    os.environ["RAGSTORE_MIGRATE_ON_START"] = "false"
    try:
        uvicorn.run(
            "app.main:create_app",
            **server_options(settings, factory=True, host=host, port=port, workers=workers),
        )
    finally:
        asyncio.run(database.close())


async def _migrated(settings: Settings) -> Database:
    database = await Database.open(settings)
    if settings.migrate_on_start:
        await asyncio.to_thread(upgrade, settings, database.url)
    return database
