import asyncio
import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import scalar
from tests.support.uploads import long_text, upload


async def test_create_get_list_and_delete_a_collection(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    created = await client.post(
        "/api/collections", json={"name": "Manuals", "metadata": {"owner": "ops"}}
    )
    assert created.status_code == 201
    collection = created.json()
    assert collection["name"] == "Manuals"
    assert collection["metadata"] == {"owner": "ops"}
    assert collection["document_count"] == 0

    fetched = await client.get(f"/api/collections/{collection['id']}")
    listed = await client.get("/api/collections")
    assert fetched.json() == collection
    assert listed.json()["total"] == 1 and listed.json()["data"] == [collection]

    await upload(client, long_text(2), route=f"/api/collections/{collection['id']}/documents")
    deleted = await client.delete(f"/api/collections/{collection['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"/api/collections/{collection['id']}")).status_code == 404
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0


async def test_a_chosen_id_is_kept_and_a_duplicate_is_409(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/collections", json={"name": "A", "id": "team-a"})
    again = await client.post("/api/collections", json={"name": "B", "id": "team-a"})

    assert first.json()["id"] == "team-a"
    assert again.status_code == 409
    assert again.json() == {"detail": "collection 'team-a' already exists"}


async def test_invalid_collection_bodies_are_422(client: httpx.AsyncClient) -> None:
    for body in ({"name": ""}, {"name": "x", "id": "../etc"}, {}):
        response = await client.post("/api/collections", json=body)
        assert response.status_code == 422
        assert isinstance(response.json()["detail"], str)


async def test_unknown_collection_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/collections/missing")

    assert response.status_code == 404
    assert response.json() == {"detail": "collection 'missing' not found"}


async def test_concurrent_creates_of_one_id_make_one_collection_and_409s(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    creates = [
        client.post("/api/collections", json={"name": f"team {n}", "id": "team"}) for n in range(10)
    ]

    responses = await asyncio.gather(*creates)

    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert await scalar(db, "SELECT count(*) FROM collections") == 1


@pytest.mark.parametrize(
    ("metadata", "detail"),
    [
        ({"owner": "ops\x00"}, "metadata must not contain NUL characters"),
        ({"score": float("nan")}, "metadata must not contain NaN or Infinity"),
        ({"owner": "\udab3"}, "metadata must not contain unpaired surrogates (invalid Unicode)"),
    ],
)
async def test_metadata_postgresql_cannot_store_is_422(
    client: httpx.AsyncClient, db: AsyncConnection, metadata: dict[str, object], detail: str
) -> None:
    # Python's json writes NaN and lone surrogates (as escapes), as some clients do.
    body = json.dumps({"name": "Manuals", "metadata": metadata})

    response = await client.post(
        "/api/collections", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json() == {"detail": detail}
    assert await scalar(db, "SELECT count(*) FROM collections") == 0
