"""Starting with an embedding model of another dimension fails, and says what to do."""

import logging

import pytest

from app.core.config import Settings
from app.core.errors import StartupError
from app.main import create_app
from tests.support.servers import app_server


async def test_a_model_of_another_dimension_refuses_to_start(settings: Settings) -> None:
    other = settings.model_copy(update={"embedding_dimensions": 1536})

    app = create_app(other)

    with pytest.raises(StartupError) as refused:
        async with app.router.lifespan_context(app):
            pass

    assert "this database stores 384-dimensional embeddings" in str(refused.value)
    assert "RAGSTORE_EMBEDDING_MODEL=text-embedding-3-small again" in str(refused.value)


def test_a_different_model_of_the_same_dimension_starts_with_a_warning(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    other = settings.model_copy(
        update={
            "embedding_provider": "openai",
            "embedding_model": "e5",
            "embedding_dimensions": 384,
        }
    )

    with app_server(other):
        pass

    assert "embedding model changed from 'text-embedding-3-small' to 'e5'" in caplog.text


async def test_another_text_search_language_refuses_to_start(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"text_search_config": "german"}))

    with pytest.raises(StartupError, match="built for text-search language 'english'"):
        async with app.router.lifespan_context(app):
            pass
