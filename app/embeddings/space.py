"""Refuse to mix vectors of different embedding models in one database."""

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import StartupError
from app.embeddings.repository import EmbeddingSpaceRepository

logger = logging.getLogger(__name__)


async def verify_embedding_space(session: AsyncSession, settings: Settings) -> None:
    """Fail start-up when the settings no longer match how the stored data was indexed."""
    space = await EmbeddingSpaceRepository(session).get()
    if space is None:
        raise StartupError("the database has no embedding_space row: run `ragstore db upgrade`")
    if space.dimensions != settings.embedding_dimensions:
        raise StartupError(
            f"this database stores {space.dimensions}-dimensional embeddings from "
            f"{space.provider} model {space.model!r}, but the settings ask for "
            f"{settings.embedding_dimensions}-dimensional ones from "
            f"{settings.embedding_provider} model {settings.embedding_model!r}. Either set "
            f"RAGSTORE_EMBEDDING_PROVIDER={space.provider} and "
            f"RAGSTORE_EMBEDDING_MODEL={space.model} again, or point ragstore at a new "
            "database (DATABASE_URL or RAGSTORE_DATA_DIR) and upload the documents again."
        )
    if space.text_search_config != settings.text_search_config:
        raise StartupError(
            f"this database's keyword index was built for text-search language "
            f"{space.text_search_config!r}, but RAGSTORE_TEXT_SEARCH_CONFIG is "
            f"{settings.text_search_config!r}: set it back to {space.text_search_config}, or use "
            "a new database"
        )
    if space.model != settings.embedding_model:
        logger.warning(
            "embedding model changed from %r to %r with the same dimension: vectors of the "
            "two models are not comparable, so search quality suffers until documents are "
            "uploaded again",
            space.model,
            settings.embedding_model,
        )
