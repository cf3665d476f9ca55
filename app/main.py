"""The FastAPI application: `create_app()` wires settings, database, clients and routes."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

import anyio.lowlevel
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from app.chat.endpoints import router as chat_router
from app.collection.endpoints import router as collection_router
from app.compat.endpoints import router as compat_router
from app.console.endpoints import add_console
from app.core.config import Settings, describe_database, get_settings
from app.core.logging import configure_logging
from app.core.middleware import (
    DOCS_FILES_PATH,
    RequestBodyTimeout,
    SecurityHeaders,
    ServiceAuth,
    UploadSizeLimit,
)
from app.document.endpoints import router as document_router
from app.health.endpoints import router as health_router
from app.jobs.endpoints import router as jobs_router
from app.openai_api.endpoints import router as openai_router
from app.runtime import Runtime
from app.search.endpoints import router as search_router
from app.web.errors import register_error_handlers
from app.web.openapi import document_service_auth

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; uvicorn calls this with `--factory`, tests with their own settings."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, known_secrets=settings.secrets())
        runtime = await Runtime.open(settings)
        app.state.runtime = runtime
        app.state.database = runtime.database
        runtime.model_warm_up.start()
        logger.info(
            "ragstore %s: database %s; embedding model %s (%d dimensions)",
            version("ragstore"),
            describe_database(settings),
            runtime.embedding_model.model,
            runtime.embedding_model.dimensions,
        )
        worker = (
            asyncio.create_task(runtime.queue.work(settings.worker_concurrency))
            if settings.worker_in_process
            else None
        )
        # FastAPI builds each included router's routes (dependency graphs, body
        # validators) on the first request that walks through it: about 60 ms that
        # the first search after ready would pay. Building the OpenAPI schema walks
        # every route once, before the server accepts a connection.
        app.openapi()
        # anyio imports its asyncio backend on first use (11 ms), and FastAPI first uses
        # it to enter a generator dependency: the database session of the first search.
        await anyio.lowlevel.checkpoint()
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await runtime.close()

    # /docs and /redoc with Swagger UI's and ReDoc's files from the fastapi-offline
    # package, so they render with no internet (FastAPI's own pages load them from a CDN).
    app = FastAPIOffline(
        title="ragstore",
        summary="Documents, chunks and embeddings in PostgreSQL + pgvector; "
        "streaming retrieval-augmented chat through any OpenAI-compatible API.",
        version="0.1.0",
        lifespan=lifespan,
        static_url=DOCS_FILES_PATH,
    )
    # Outermost last: security headers on every answer, CORS around authentication (so a
    # 401 still reaches a browser and preflights need no key), then the upload limit.
    app.add_middleware(UploadSizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestBodyTimeout, seconds=settings.request_body_timeout_seconds)
    if settings.api_keys:
        app.add_middleware(
            ServiceAuth, api_keys=[key.get_secret_value() for key in settings.api_keys]
        )
        document_service_auth(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_origins != ["*"],
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(SecurityHeaders)
    register_error_handlers(app)
    app.include_router(health_router)
    app.include_router(compat_router)
    app.include_router(collection_router)
    app.include_router(document_router)
    app.include_router(search_router)
    app.include_router(chat_router)
    app.include_router(jobs_router)
    app.include_router(openai_router)
    add_console(app)
    return app
