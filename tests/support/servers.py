"""Run an ASGI app on 127.0.0.1 in a background thread, with real HTTP and lifespan."""

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from app.core.config import Settings
from app.main import create_app
from app.web.server import server_config


class ThreadedServer:
    def __init__(
        self, app: ASGIApp, log_level: str = "warning", settings: Settings | None = None
    ) -> None:
        """`settings`, when given, configure the server as `ragstore serve` does."""
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "log_level": log_level,
            "lifespan": "on",
        }
        config = (
            uvicorn.Config(app, **options)
            if settings is None
            else server_config(app, settings, **options)
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ThreadedServer":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("server failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start within 30 s")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> "ThreadedServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def app_server(settings: Settings, log_level: str = "warning") -> ThreadedServer:
    """ragstore built from `settings`, not started yet: `with` starts and stops it."""
    return ThreadedServer(create_app(settings), log_level=log_level, settings=settings)


@asynccontextmanager
async def serve_app(
    settings: Settings, client_timeout: float = 30
) -> AsyncIterator[httpx.AsyncClient]:
    """ragstore built from `settings`, served on loopback; yields an HTTP client for it."""
    with app_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=client_timeout) as client:
            yield client
