"""Real parts for every test: an embedded PostgreSQL with pgvector, a database per
test cloned from a migrated template, an OpenAI-compatible server on 127.0.0.1,
and the app served over real HTTP by uvicorn."""

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.core.config import Settings
from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from app.main import create_app
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import ThreadedServer

TEMPLATE_DATABASE = "ragstore_template"
SERVER_KEY = "test-server-key-0123456789"


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's tmp_path: a second pytest session prunes old numbered
    # temp directories and would delete a live data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="ragstore-test-"))
    server = EmbeddedPostgres(data_dir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def base_settings(**overrides: object) -> Settings:
    """Settings from code only: a developer's .env must not change what tests see."""
    values: dict[str, object] = {"migrate_on_start": False, "upstream_max_retries": 0}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# The app under test embeds through the fake OpenAI server (fast, countable);
# tests of the local model ask for it themselves.
APP_SETTINGS: dict[str, object] = {
    "embedding_provider": "openai",
    "embedding_model": "text-embedding-3-small",
    "embedding_dimensions": 384,
    "embedding_retry_max_wait_seconds": 0.05,
    "embedding_max_attempts": 3,
    # Job tests start workers themselves.
    "worker_in_process": False,
}


@pytest.fixture(scope="session")
def template_database(postgres: EmbeddedPostgres) -> str:
    """A database migrated once with `alembic upgrade head`; each test gets a copy."""
    postgres.psql(
        f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE}; CREATE DATABASE {TEMPLATE_DATABASE};"
    )
    migrate.upgrade(base_settings(**APP_SETTINGS), postgres.url(TEMPLATE_DATABASE))
    return TEMPLATE_DATABASE


def create_database(postgres: EmbeddedPostgres, template: str | None = None) -> str:
    name = f"test_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template};" if template else ";"))
    return name


@pytest.fixture
def database_url(postgres: EmbeddedPostgres, template_database: str) -> Iterator[str]:
    name = create_database(postgres, template_database)
    yield postgres.url(name)
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server, cleared of earlier tests' requests and scripts."""
    fake_openai.reset()
    yield fake_openai
    fake_openai.reset()


@pytest.fixture
def settings(database_url: str, upstream: FakeOpenAI) -> Settings:
    return base_settings(
        database_url=database_url,
        openai_base_url=upstream.url,
        openai_api_key=SERVER_KEY,
        **APP_SETTINGS,
    )


@pytest.fixture
def app_server(settings: Settings) -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(settings)) as server:
        yield server


@pytest.fixture
async def client(app_server: ThreadedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A direct connection to the test's database, to check the rows a request left."""
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        yield connection
    await engine.dispose()


async def scalar(db: AsyncConnection, sql: str, **params: object) -> Any:
    """One value from SQL, seen from outside any request's transaction."""
    result = await db.scalar(text(sql), params)
    await db.commit()
    return result


RAGSTORE = str(Path(sys.executable).with_name("ragstore"))


@pytest.fixture
def cli_env(settings: Settings, upstream: FakeOpenAI) -> dict[str, str]:
    """The test database and the fake upstream as environment variables, for `ragstore` runs."""
    assert settings.database_url
    variables = {
        "DATABASE_URL": settings.database_url,
        "OPENAI_BASE_URL": upstream.url,
        "OPENAI_API_KEY": SERVER_KEY,
        "RAGSTORE_MIGRATE_ON_START": "false",
        "COLUMNS": "200",
    }
    variables.update({f"RAGSTORE_{k.upper()}": str(v) for k, v in APP_SETTINGS.items()})
    return {**os.environ, **variables}


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
