import pytest
from pydantic import ValidationError

from tests.support.settings import base_settings


def test_defaults_use_the_local_model_and_its_dimension() -> None:
    settings = base_settings()

    assert settings.embedding_provider == "local"
    assert settings.embedding_model == "all-MiniLM-L6-v2"
    assert settings.embedding_dimensions == 384
    assert settings.default_chat_model == "gpt-4.1-mini"
    assert settings.cors_origins == ["*"]


def test_openai_provider_knows_its_default_model_dimension() -> None:
    settings = base_settings(embedding_provider="openai")

    assert (settings.embedding_model, settings.embedding_dimensions) == (
        "text-embedding-3-small",
        1536,
    )


def test_plain_postgres_urls_get_the_asyncpg_driver() -> None:
    settings = base_settings(database_url="postgres://u:p@db:5432/rag")

    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/rag"


def test_cors_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSTORE_CORS_ORIGINS", "https://a.example, https://b.example")

    assert base_settings().cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"database_url": "mysql://x"}, "DATABASE_URL must be a postgresql:// URL"),
        (
            {"embedding_provider": "openai", "embedding_model": "mine"},
            "set RAGSTORE_EMBEDDING_DIMENSIONS",
        ),
        (
            {"embedding_provider": "openai", "embedding_model": "text-embedding-3-large"},
            "2000 or fewer",
        ),
        ({"embedding_model": "text-embedding-3-small"}, "is not a local model"),
        ({"embedding_dimensions": 128}, "always gives 384 dimensions"),
        ({"upstream_timeout_seconds": 0}, "greater than 0"),
    ],
)
def test_invalid_settings_fail_with_a_message_that_says_what_to_do(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        base_settings(**overrides)


def test_text_embedding_3_large_fits_when_shortened() -> None:
    settings = base_settings(
        embedding_provider="openai",
        embedding_model="text-embedding-3-large",
        embedding_dimensions=1024,
    )

    assert settings.embedding_dimensions == 1024
