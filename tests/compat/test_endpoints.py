"""The original app's routes: same shapes, now persistent and complete."""

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI
from tests.support.uploads import long_text, upload


async def test_upload_without_session_creates_one_and_answers_the_original_fields(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    response = await upload(client, long_text(), "notes.txt")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"success", "message", "session_id", "document_count", "filename"}
    assert body["success"] is True
    assert body["filename"] == "notes.txt"
    assert body["document_count"] == 1
    assert body["status"] == "completed"
    assert body["chunk_count"] > 1
    stored = await scalar(
        db, "SELECT count(*) FROM chunks WHERE document_id = :d", d=body["document_id"]
    )
    assert stored == body["chunk_count"]
    assert [r.path for r in upstream.requests] == ["embeddings"]


async def test_upload_pdf_is_an_alias(client: httpx.AsyncClient) -> None:
    response = await upload(client, long_text(2), "a.txt", route="/api/upload-pdf")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"


async def test_upload_into_an_unknown_session_id_creates_it(client: httpx.AsyncClient) -> None:
    response = await upload(client, long_text(2), session_id="my-session")

    assert response.json()["session_id"] == "my-session"
    session = await client.get("/api/session/my-session")
    assert session.json()["documents"] == ["notes.txt"]


async def test_sessions_list_has_the_original_shape(client: httpx.AsyncClient) -> None:
    await upload(client, long_text(2), "a.txt", session_id="s1")
    await upload(client, long_text(3), "b.txt", session_id="s1")
    await upload(client, long_text(2), "c.txt", session_id="s2")

    response = await client.get("/api/sessions")

    body = response.json()
    assert body["total_sessions"] == 2
    sessions = {s["session_id"]: s for s in body["sessions"]}
    assert sessions["s1"]["documents"] == ["a.txt", "b.txt"]
    assert sessions["s1"]["document_count"] == 2
    assert sessions["s2"]["document_count"] == 1
    assert "created_at" in sessions["s1"]


async def test_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/session/nope"),
        await client.delete("/api/session/nope"),
        await client.delete("/api/documents/nope/a.txt"),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "Session not found: nope"}


async def test_deleting_a_document_deletes_its_chunks(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await upload(client, long_text(), "a.txt", session_id="s")
    await upload(client, long_text(3), "b.txt", session_id="s")

    response = await client.delete("/api/documents/s/a.txt")

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Document 'a.txt' deleted from session s",
        "remaining_documents": ["b.txt"],
        "document_count": 1,
    }
    filenames = await scalar(
        db, "SELECT array_agg(DISTINCT metadata->>'filename') FROM chunks WHERE collection_id = 's'"
    )
    assert filenames == ["b.txt"]
    missing = await client.delete("/api/documents/s/a.txt")
    assert missing.status_code == 404


async def test_deleting_a_session_deletes_documents_and_chunks(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await upload(client, long_text(), "a.txt", session_id="s")

    response = await client.delete("/api/session/s")

    assert response.json() == {"success": True, "message": "Session s deleted"}
    assert await scalar(db, "SELECT count(*) FROM documents") == 0
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0
    assert (await client.get("/api/sessions")).json()["total_sessions"] == 0
