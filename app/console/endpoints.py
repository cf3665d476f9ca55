"""Serves the console: its page at `/` and its files under `/console/`."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app.core.middleware import CONSOLE_FILES_PATH, CONSOLE_PATH

STATIC = Path(__file__).parent / "static"


def add_console(app: FastAPI) -> None:
    """Serve the console's page and files; neither appears in /openapi.json."""

    @app.get(CONSOLE_PATH, include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount(CONSOLE_FILES_PATH, StaticFiles(directory=STATIC), name="console")
