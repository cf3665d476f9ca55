import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings, default_data_dir, describe_database, old_data_dir_notice
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
            {
                "embedding_provider": "openai",
                "embedding_model": "mine",
                "embedding_dimensions": 16_001,
            },
            "16000 or fewer",
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


def test_the_default_data_directory_is_the_same_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAGSTORE_DATA_DIR", raising=False)
    seen = []
    for folder in (tmp_path, tmp_path / "elsewhere"):
        folder.mkdir(exist_ok=True)
        monkeypatch.chdir(folder)
        seen.append(Settings(_env_file=None).data_dir)  # type: ignore[call-arg]

    assert seen[0] == seen[1] == default_data_dir()
    assert default_data_dir().is_absolute() and default_data_dir().name == "ragstore"


def test_an_old_database_in_the_working_directory_is_pointed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAGSTORE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".ragstore" / "pgdata").mkdir(parents=True)

    notice = old_data_dir_notice(Settings(_env_file=None))  # type: ignore[call-arg]
    chosen = old_data_dir_notice(
        Settings(_env_file=None, data_dir=tmp_path / ".ragstore")  # type: ignore[call-arg]
    )

    assert notice is not None
    assert f"set RAGSTORE_DATA_DIR={tmp_path / '.ragstore'}" in notice
    assert chosen is None


def test_the_database_is_described_without_its_password(tmp_path: Path) -> None:
    remote = base_settings(database_url="postgres://rag:s3cret@db.example:5432/rag")
    embedded = base_settings(database_url=None, data_dir=tmp_path)

    assert describe_database(remote) == "postgresql+asyncpg://rag:***@db.example:5432/rag"
    assert describe_database(embedded) == f"embedded PostgreSQL in {tmp_path}"


def _database_cores_in_a_process_on_one_core(**environment: str) -> int:
    """What a process that may run on one core only takes for the database's cores."""
    program = "from tests.support.settings import base_settings; "
    program += "print(base_settings().database_cpu_count)"
    printed = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, **environment},
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(printed.stdout)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux's CPU affinity")
def test_the_database_has_this_processs_cores_unless_told_otherwise() -> None:
    assert _database_cores_in_a_process_on_one_core() == 1
    assert _database_cores_in_a_process_on_one_core(RAGSTORE_DATABASE_CORES="8") == 8
