"""A document's metadata changes without re-embedding: by PATCH, or by uploading the same
bytes with other metadata. Filters see the change at once; ragstore's own chunk keys stay."""

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI, embedding_calls
from tests.support.uploads import long_text, upload


async def filtered_hits(client: httpx.AsyncClient, key: str, value: object) -> int:
    answer = await client.post(
        "/api/collections/manuals/search",
        json={
            "query": "part",
            "mode": "keyword",
            "k": 50,
            "filters": {"type": "eq", "key": key, "value": value},
        },
    )
    assert answer.status_code == 200, answer.text
    return len(answer.json()["results"])


async def test_patch_replaces_the_metadata_of_the_document_and_its_chunks(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    uploaded = await upload(
        client, long_text(), session_id="manuals", metadata='{"product": "x100", "lang": "en"}'
    )
    document = uploaded.json()["document_id"]
    chunks = uploaded.json()["chunk_count"]
    calls = embedding_calls(upstream)

    patched = await client.patch(
        f"/api/collections/manuals/documents/{document}",
        json={"metadata": {"product": "x200", "year": 2026}},
    )

    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"] == {"product": "x200", "year": 2026}
    assert await filtered_hits(client, "product", "x200") == chunks
    assert await filtered_hits(client, "product", "x100") == 0
    assert await filtered_hits(client, "lang", "en") == 0
    assert embedding_calls(upstream) == calls
    kept = await scalar(
        db,
        "SELECT bool_and(metadata ? 'filename' AND metadata ? 'chunk_index' "
        "AND metadata->>'year' = '2026' AND NOT metadata ? 'lang') FROM chunks",
    )
    assert kept is True


async def test_patch_refuses_unknown_fields_reserved_keys_and_missing_documents(
    client: httpx.AsyncClient,
) -> None:
    uploaded = await upload(client, long_text(), session_id="manuals")
    route = f"/api/collections/manuals/documents/{uploaded.json()['document_id']}"

    unknown = await client.patch(route, json={"metadata": {}, "tags": ["a"]})
    reserved = await client.patch(route, json={"metadata": {"page": 3, "filename": "x"}})
    missing = await client.patch(
        "/api/collections/manuals/documents/00000000-0000-0000-0000-000000000000",
        json={"metadata": {}},
    )

    assert unknown.status_code == 422 and "tags" in unknown.text
    assert reserved.status_code == 422
    assert "'filename', 'page' are reserved" in reserved.json()["detail"]
    assert missing.status_code == 404


async def test_the_same_bytes_with_new_metadata_update_it_and_say_so(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    first = await upload(client, long_text(), session_id="manuals")
    calls = embedding_calls(upstream)

    again = await upload(client, long_text(), session_id="manuals", metadata='{"product": "x200"}')
    same = await upload(
        client,
        long_text(),
        "notes.txt",
        "/api/collections/manuals/documents",
        metadata='{"product": "x200"}',
    )

    assert again.status_code == 200
    assert again.json()["message"].endswith("its metadata was updated")
    assert again.json()["document_id"] == first.json()["document_id"]
    assert same.status_code == 200
    assert same.json()["already_processed"] and not same.json()["metadata_updated"]
    assert same.json()["metadata"] == {"product": "x200"}
    assert await filtered_hits(client, "product", "x200") == first.json()["chunk_count"]
    assert embedding_calls(upstream) == calls


async def test_a_background_upload_of_the_same_bytes_updates_the_metadata_too(
    client: httpx.AsyncClient,
) -> None:
    await upload(client, long_text(), session_id="manuals")

    again = await upload(
        client,
        long_text(),
        "notes.txt",
        "/api/collections/manuals/documents?wait=false",
        metadata='{"product": "x200"}',
    )

    assert again.status_code == 200, again.text
    assert again.json()["metadata_updated"] and again.json()["job_id"] is None
    assert await filtered_hits(client, "product", "x200") > 0


async def test_collections_can_be_renamed_and_given_metadata(client: httpx.AsyncClient) -> None:
    await client.post("/api/collections", json={"id": "manuals", "name": "Manuals"})

    renamed = await client.patch("/api/collections/manuals", json={"name": "Handbooks"})
    tagged = await client.patch("/api/collections/manuals", json={"metadata": {"team": "docs"}})
    unknown = await client.patch("/api/collections/manuals", json={"title": "x"})
    missing = await client.patch("/api/collections/nope", json={"name": "x"})

    assert renamed.status_code == 200 and renamed.json()["name"] == "Handbooks"
    assert tagged.json() | {"updated_at": None} == renamed.json() | {
        "metadata": {"team": "docs"},
        "updated_at": None,
    }
    assert unknown.status_code == 422 and "title" in unknown.text
    assert missing.status_code == 404
