"""Real parts for every test: an embedded PostgreSQL with pgvector, a database per
test cloned from a migrated template, an OpenAI-compatible server on 127.0.0.1,
and the app served over real HTTP by uvicorn."""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.core.config import Settings
from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from tests.support.db import TEMPLATE_DATABASE, create_database
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import ThreadedServer, app_server, serve_app
from tests.support.settings import APP_SETTINGS, SERVER_KEY, base_settings


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


@pytest.fixture(scope="session")
def template_database(postgres: EmbeddedPostgres) -> str:
    """A database migrated once with `alembic upgrade head`; each test gets a copy."""
    postgres.psql(
        f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE}; CREATE DATABASE {TEMPLATE_DATABASE};"
    )
    migrate.upgrade(base_settings(**APP_SETTINGS), postgres.url(TEMPLATE_DATABASE))
    return TEMPLATE_DATABASE


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
def running_app(settings: Settings) -> Iterator[ThreadedServer]:
    """The app built from `settings`, served on 127.0.0.1, for clients of their own."""
    with app_server(settings) as server:
        yield server


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app built from `settings`, served over real HTTP on 127.0.0.1."""
    async with serve_app(settings) as client:
        yield client


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A direct connection to the test's database, to check the rows a request left."""
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        yield connection
    await engine.dispose()


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
