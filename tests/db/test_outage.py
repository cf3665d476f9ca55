"""PostgreSQL restarted under a running ragstore: 503s with a clear detail while it is
down, then the same requests succeed, without restarting ragstore.

The test has an embedded server of its own: the session's is shared by every test.
"""

import asyncio
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import Settings
from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from app.db.outage import DATABASE_UNAVAILABLE, is_database_outage
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import serve_app
from tests.support.settings import APP_SETTINGS, SERVER_KEY, base_settings
from tests.support.uploads import long_text, upload

COLLECTION = "outage"


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    data_dir = Path(tempfile.mkdtemp(prefix="ragstore-outage-"))
    server = EmbeddedPostgres(data_dir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def outage_settings(own_postgres: EmbeddedPostgres, upstream: FakeOpenAI) -> Settings:
    url = own_postgres.url("ragstore")
    settings = base_settings(
        database_url=url, openai_base_url=upstream.url, openai_api_key=SERVER_KEY, **APP_SETTINGS
    )
    migrate.upgrade(settings, url)
    return settings


def requests_of_every_kind(
    client: httpx.AsyncClient, tag: str
) -> dict[str, Awaitable[httpx.Response]]:
    question = "How does reciprocal rank fusion combine keyword and vector search?"
    return {
        "upload": upload(client, long_text(2) + tag, f"{tag}.txt", session_id=COLLECTION),
        "async upload": upload(
            client,
            long_text(3) + tag,
            f"{tag}-async.txt",
            session_id=COLLECTION,
            route="/api/upload-document?wait=false",
        ),
        "search": client.post(
            f"/api/collections/{COLLECTION}/search", json={"query": "rank fusion", "k": 2}
        ),
        "documents": client.get(f"/api/collections/{COLLECTION}/documents"),
        "rag chat": client.post(
            "/api/rag-chat", json={"user_message": question, "session_id": COLLECTION}
        ),
        "health": client.get("/api/health"),
    }


async def send(requests: dict[str, Awaitable[httpx.Response]]) -> dict[str, httpx.Response]:
    """One after another, so each runs on the pooled keep-alive connection."""
    return {name: await request for name, request in requests.items()}


HEALTHY = {
    "upload": 200,
    "async upload": 202,
    "search": 200,
    "documents": 200,
    "rag chat": 200,
    "health": 200,
}


async def test_requests_get_503_while_postgres_is_down_and_succeed_once_it_is_back(
    outage_settings: Settings, own_postgres: EmbeddedPostgres
) -> None:
    async with serve_app(outage_settings) as client:
        before = await send(requests_of_every_kind(client, "before"))
        own_postgres.stop()
        during = await send(requests_of_every_kind(client, "during"))
        own_postgres.start()
        after = await send(requests_of_every_kind(client, "after"))
        listed = (await client.get(f"/api/collections/{COLLECTION}/documents")).json()

    assert {name: r.status_code for name, r in before.items()} == HEALTHY
    for name, response in during.items():
        assert response.status_code == 503, (name, response.text)
        assert response.json()["detail"].startswith("database un"), (name, response.text)
    assert during["upload"].json() == {"detail": DATABASE_UNAVAILABLE}
    assert {name: r.status_code for name, r in after.items()} == HEALTHY
    assert after["rag chat"].text == "Hello, world!"
    filenames = {document["filename"] for document in listed["data"]}
    assert filenames == {"before.txt", "before-async.txt", "after.txt", "after-async.txt"}


async def embedding_started(upstream: FakeOpenAI) -> None:
    for _ in range(3000):
        if upstream.in_flight:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("no embedding request arrived")


async def test_an_upload_in_flight_when_postgres_stops_is_503_and_leaves_nothing(
    outage_settings: Settings, own_postgres: EmbeddedPostgres, upstream: FakeOpenAI
) -> None:
    embedding = threading.Event()
    upstream.hold_requests = embedding
    async with serve_app(outage_settings) as client:
        await client.post("/api/collections", json={"name": COLLECTION, "id": COLLECTION})
        in_flight = asyncio.create_task(
            upload(client, long_text(), "a.txt", route=f"/api/collections/{COLLECTION}/documents")
        )
        await embedding_started(upstream)  # inside the ingestion's transaction
        await asyncio.to_thread(own_postgres.stop)
        embedding.set()
        cut_off = await in_flight
        own_postgres.start()
        documents = (await client.get(f"/api/collections/{COLLECTION}/documents")).json()
        again = await upload(
            client, long_text(), "a.txt", route=f"/api/collections/{COLLECTION}/documents"
        )

    assert cut_off.status_code == 503, cut_off.text
    assert cut_off.json() == {"detail": DATABASE_UNAVAILABLE}
    assert documents["total"] == 0
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "completed"


async def test_a_server_shutting_down_is_an_outage_too(own_postgres: EmbeddedPostgres) -> None:
    """'the database system is shutting down' (smart shutdown waits for open sessions)."""
    url = own_postgres.url("ragstore")
    held, fresh = create_async_engine(url), create_async_engine(url, poolclass=NullPool)
    refused: DBAPIError | None = None
    try:
        async with held.connect() as session:
            await session.execute(text("SELECT 1"))
            assert own_postgres.server_pid is not None
            os.kill(own_postgres.server_pid, signal.SIGTERM)
            for _ in range(200):
                try:
                    async with fresh.connect():
                        await asyncio.sleep(0.05)  # the postmaster has not seen the signal yet
                except DBAPIError as exc:
                    refused = exc
                    break
    finally:
        await held.dispose()
        await fresh.dispose()

    assert refused is not None, "new connections were never refused"
    assert "shutting down" in str(refused)
    assert is_database_outage(refused)
