import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import scalar
from tests.support.uploads import long_text, upload


async def _collection(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/collections", json={"name": "docs", "id": "docs"})
    return str(response.json()["id"])


async def test_upload_list_get_and_delete_a_document(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    collection = await _collection(client)
    route = f"/api/collections/{collection}/documents"

    created = await upload(client, long_text(), "guide.md", route=route, metadata='{"lang": "en"}')

    assert created.status_code == 201, created.text
    document = created.json()
    assert document["status"] == "completed"
    assert document["content_type"] == "text/markdown"
    assert document["metadata"] == {"lang": "en"}
    assert document["already_processed"] is False
    again = await upload(client, long_text(), "guide.md", route=route)
    assert again.status_code == 200 and again.json()["already_processed"] is True

    listed = (await client.get(route)).json()
    assert [d["id"] for d in listed["data"]] == [document["id"]]
    fetched = await client.get(f"{route}/{document['id']}")
    assert fetched.json()["chunk_count"] == document["chunk_count"]

    deleted = await client.delete(f"{route}/{document['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"{route}/{document['id']}")).status_code == 404
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0


async def test_chunks_are_paginated_in_document_order(client: httpx.AsyncClient) -> None:
    collection = await _collection(client)
    route = f"/api/collections/{collection}/documents"
    document = (await upload(client, long_text(), route=route)).json()

    page_one = (await client.get(f"{route}/{document['id']}/chunks?limit=3")).json()
    page_two = (await client.get(f"{route}/{document['id']}/chunks?limit=3&offset=3")).json()

    assert [c["chunk_index"] for c in page_one["data"]] == [0, 1, 2]
    assert [c["chunk_index"] for c in page_two["data"]] == [3, 4, 5]
    assert page_one["total"] == document["chunk_count"]


async def test_upload_into_an_unknown_collection_is_404_and_creates_nothing(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    response = await upload(client, long_text(2), route="/api/collections/nope/documents")

    assert response.status_code == 404
    assert await scalar(db, "SELECT count(*) FROM collections") == 0


async def test_unknown_document_is_404(client: httpx.AsyncClient) -> None:
    collection = await _collection(client)
    missing = uuid.uuid4()

    response = await client.get(f"/api/collections/{collection}/documents/{missing}")

    assert response.status_code == 404
    assert response.json() == {"detail": f"document {missing} not found in collection 'docs'"}
