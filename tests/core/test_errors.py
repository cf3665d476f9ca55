"""Failures a caller can cause, answered as `{"detail": ...}` and never as a 500."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.outage import TEXT_WITH_NUL
from tests.support.db import scalar
from tests.support.uploads import PROSE, upload


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs"),
    [
        ("POST", "/api/collections", {"json": {"name": "a\x00b"}}),
        ("GET", "/api/collections/a%00b", {}),
        ("GET", "/api/session/a%00b", {}),
        ("DELETE", "/api/documents/s/a%00b.txt", {}),
        ("POST", "/api/collections/s/search", {"json": {"query": "a\x00b", "mode": "keyword"}}),
        ("POST", "/api/rag-chat", {"json": {"session_id": "s", "user_message": "a\x00b"}}),
    ],
)
async def test_a_nul_character_anywhere_postgresql_sees_is_422(
    client: httpx.AsyncClient,
    db: AsyncConnection,
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
) -> None:
    assert (await upload(client, PROSE, "seed.txt", session_id="s")).status_code == 200
    before = await scalar(db, "SELECT count(*) FROM documents")

    response = await client.request(method, path, **request_kwargs)

    assert response.status_code == 422, response.text
    assert response.json() == {"detail": TEXT_WITH_NUL}
    assert await scalar(db, "SELECT count(*) FROM documents") == before
