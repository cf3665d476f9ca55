"""The FastAPI application: `create_app()` wires settings, database, clients and routes."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import DBAPIError

from app.chat.endpoints import router as chat_router
from app.collection.endpoints import router as collection_router
from app.compat.endpoints import router as compat_router
from app.core.config import Settings, get_settings
from app.core.errors import register_error_handlers
from app.core.logging import configure_logging
from app.db import migrate
from app.db.database import Database
from app.document.endpoints import router as document_router
from app.embeddings.factory import create_embedding_model
from app.embeddings.space import verify_embedding_space
from app.health.endpoints import router as health_router
from app.ingestion.service import IngestionService
from app.ingestion.upload import UploadSizeLimit
from app.llm.client import LLMClients

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; uvicorn calls this with `--factory`, tests with their own settings."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        configure_logging(settings.log_level, known_secrets=[secret])
        database = await Database.open(settings)
        try:
            await _prepare_schema(database, settings)
            app.state.settings = settings
            app.state.database = database
            app.state.llm_clients = LLMClients(settings)
            app.state.embedding_model = create_embedding_model(settings, app.state.llm_clients)
            app.state.ingestion = IngestionService(database, app.state.embedding_model, settings)
            yield
            await app.state.embedding_model.close()
            await app.state.llm_clients.close()
        finally:
            await database.close()

    app = FastAPI(
        title="ragstore",
        summary="Documents, chunks and embeddings in PostgreSQL + pgvector; "
        "streaming retrieval-augmented chat through any OpenAI-compatible API.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_origins != ["*"],
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(UploadSizeLimit, max_bytes=settings.max_upload_bytes)
    register_error_handlers(app)
    app.include_router(health_router)
    app.include_router(chat_router)
    app.include_router(compat_router)
    app.include_router(collection_router)
    app.include_router(document_router)
    return app


async def _prepare_schema(database: Database, settings: Settings) -> None:
    """Migrate (when configured) and check the embedding dimension before serving."""
    try:
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate.upgrade, settings, database.url)
        async with database.session() as session:
            await verify_embedding_space(session, settings)
    except (OSError, DBAPIError) as exc:
        # Serve anyway: /api/health reports the outage and requests get 503s
        # until PostgreSQL is back, instead of a crash loop.
        logger.error("database unreachable at start-up (%s); serving without it", exc)
