"""The official `openai` SDK against ragstore, with only `base_url` changed.

Every answer the SDK receives is also parsed with the SDK's own pydantic types
(`model_validate` on the raw JSON, tests/support/openai_shapes.py), which fails
on a missing required field.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types import FileObject, VectorStore
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.fake_openai import FakeOpenAI, embedding_calls
from tests.support.files import Heading, write_docx, write_pdf
from tests.support.invariants import settled_violations
from tests.support.openai_shapes import ShapeChecker
from tests.support.servers import ThreadedServer, app_server

POLL_MS = 50


@pytest.fixture
def served(settings: Settings) -> Iterator[ThreadedServer]:
    """ragstore with its worker, so added files are processed in the background."""
    with app_server(settings.model_copy(update={"worker_in_process": True})) as server:
        yield server


@pytest.fixture
async def sdk(served: ThreadedServer) -> AsyncIterator[AsyncOpenAI]:
    """The SDK, its every answer also parsed with the SDK's own types (ShapeChecker)."""
    async with (
        ShapeChecker().client() as transport,
        AsyncOpenAI(
            base_url=f"{served.url}/v1", api_key="any", max_retries=0, http_client=transport
        ) as client,
    ):
        yield client


@pytest.fixture
async def raw(served: ThreadedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{served.url}/v1", timeout=30) as client:
        yield client


def text_file(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.write_text(content)
    return path


async def ready_store(sdk: AsyncOpenAI, name: str, *paths: Path) -> VectorStore:
    store = await sdk.vector_stores.create(name=name)
    for path in paths:
        added = await sdk.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=path, poll_interval_ms=POLL_MS
        )
        assert added.status == "completed", added.last_error
    return await sdk.vector_stores.retrieve(store.id)


async def test_upload_poll_and_search_pdf_docx_and_text(
    sdk: AsyncOpenAI, raw: httpx.AsyncClient, tmp_path: Path, db: AsyncConnection
) -> None:
    pdf = write_pdf(tmp_path / "manual.pdf", ["To reset the X200, hold the power button."])
    docx = write_docx(tmp_path / "guide.docx", [Heading("Batteries"), "Charge it for an hour."])
    notes = text_file(tmp_path, "notes.txt", "The warranty covers two years of repairs.")

    store = await ready_store(sdk, "manuals", pdf, docx, notes)
    results = await sdk.vector_stores.search(store.id, query="how do I reset the X200?")
    answer = await raw.post(f"/vector_stores/{store.id}/search", json={"query": "warranty"})

    assert store.file_counts.completed == 3 and store.file_counts.total == 3
    assert store.status == "completed" and store.usage_bytes > 0
    assert VectorStore.model_validate((await raw.get(f"/vector_stores/{store.id}")).json())
    first = results.data[0]
    assert first.filename == "manual.pdf" and 0 < first.score <= 1
    assert "power button" in first.content[0].text
    page = answer.json()
    assert page["object"] == "vector_store.search_results.page"
    assert page["search_query"] == "warranty" and page["data"][0]["filename"] == "notes.txt"
    assert await settled_violations(db) == {}


async def test_create_and_poll_with_attributes_filters_and_threshold(
    sdk: AsyncOpenAI, tmp_path: Path
) -> None:
    store = await sdk.vector_stores.create(name="products")
    products = {"x200": ("x200.txt", 2019, True), "x300": ("x300.txt", 2023, False)}
    for product, (name, year, legacy) in products.items():
        uploaded = await sdk.files.create(
            file=text_file(tmp_path, name, f"The {product} drone flies for an hour."),
            purpose="assistants",
        )
        added = await sdk.vector_stores.files.create_and_poll(
            vector_store_id=store.id,
            file_id=uploaded.id,
            attributes={"product": product, "year": year, "legacy": legacy},
            poll_interval_ms=POLL_MS,
        )
        assert added.status == "completed" and added.attributes == {
            "product": product,
            "year": year,
            "legacy": legacy,
        }

    async def found(filters: dict[str, Any], **options: Any) -> list[str]:
        page = await sdk.vector_stores.search(
            store.id, query="drone flight time", filters=filters, **options
        )  # type: ignore[arg-type]
        return sorted(result.filename for result in page.data)

    assert await found({"type": "eq", "key": "product", "value": "x200"}) == ["x200.txt"]
    assert await found({"type": "ne", "key": "product", "value": "x200"}) == ["x300.txt"]
    assert await found({"type": "gt", "key": "year", "value": 2020}) == ["x300.txt"]
    assert await found({"type": "gte", "key": "year", "value": 2019}) == ["x200.txt", "x300.txt"]
    assert await found({"type": "lt", "key": "year", "value": 2020}) == ["x200.txt"]
    assert await found({"type": "lte", "key": "year", "value": 2018}) == []
    assert await found({"type": "eq", "key": "legacy", "value": True}) == ["x200.txt"]
    assert await found({"type": "in", "key": "product", "value": ["x300", "x9"]}) == ["x300.txt"]
    assert await found({"type": "nin", "key": "product", "value": ["x300"]}) == ["x200.txt"]
    both = {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "product", "value": "x200"},
            {"type": "and", "filters": [{"type": "gt", "key": "year", "value": 2020}]},
        ],
    }
    assert await found(both) == ["x200.txt", "x300.txt"]
    # "x200" is a word of one file only: first in both lists, it alone scores 1.
    scored = await sdk.vector_stores.search(store.id, query="x200")
    above = await sdk.vector_stores.search(
        store.id, query="x200", ranking_options={"score_threshold": 0.9}
    )
    assert [r.filename for r in scored.data] == ["x200.txt", "x300.txt"]
    assert scored.data[0].score == pytest.approx(1.0) and scored.data[1].score < 0.9
    assert [r.filename for r in above.data] == ["x200.txt"]


async def test_attribute_updates_are_seen_by_filters_at_once(
    sdk: AsyncOpenAI, tmp_path: Path, upstream: FakeOpenAI
) -> None:
    store = await ready_store(sdk, "s", text_file(tmp_path, "a.txt", "Kerosene engines roar."))
    listed = await sdk.vector_stores.files.list(store.id)
    file_id = listed.data[0].id
    calls = embedding_calls(upstream)

    updated = await sdk.vector_stores.files.update(
        file_id=file_id, vector_store_id=store.id, attributes={"team": "engines"}
    )
    page = await sdk.vector_stores.search(
        store.id, query="kerosene", filters={"type": "eq", "key": "team", "value": "engines"}
    )

    assert updated.attributes == {"team": "engines"}
    assert [r.attributes for r in page.data] == [{"team": "engines"}]
    # The search embedded its query; the update embedded nothing.
    assert embedding_calls(upstream) == calls + 1


async def test_a_stores_description_metadata_and_expiry_are_kept(
    sdk: AsyncOpenAI, raw: httpx.AsyncClient
) -> None:
    created = await sdk.vector_stores.create(
        name="handbooks",
        description="Support handbooks",
        metadata={"team": "support"},
        expires_after={"anchor": "last_active_at", "days": 7},
    )
    renamed = await sdk.vector_stores.update(
        created.id, name="manuals", metadata={"team": "field"}, expires_after=None
    )
    seen = (await raw.get(f"/vector_stores/{created.id}")).json()

    assert created.description == "Support handbooks"
    assert created.expires_after is not None and created.expires_after.days == 7
    assert created.expires_at == created.last_active_at + 7 * 86_400  # type: ignore[operator]
    assert renamed.name == "manuals" and renamed.metadata == {"team": "field"}
    assert renamed.expires_after is None and renamed.expires_at is None
    assert VectorStore.model_validate(seen).description == "Support handbooks"
    with pytest.raises(openai.BadRequestError) as too_many:
        await sdk.vector_stores.create(metadata={f"k{n}": "v" for n in range(17)})
    assert too_many.value.body is not None and "metadata" in str(too_many.value.body)


async def test_auto_pagination_walks_every_page_in_both_orders(sdk: AsyncOpenAI) -> None:
    created = [(await sdk.vector_stores.create(name=f"store-{n}")).id for n in range(5)]

    newest_first = [store.id async for store in sdk.vector_stores.list(limit=2)]
    oldest_first = [store.id async for store in sdk.vector_stores.list(limit=2, order="asc")]
    first_page = await sdk.vector_stores.list(limit=2, order="asc")
    before_third = await sdk.vector_stores.list(limit=2, order="asc", before=created[2])

    assert newest_first == created[::-1]
    assert oldest_first == created
    assert first_page.has_more and [s.id for s in first_page.data] == created[:2]
    assert [s.id for s in before_third.data] == created[:2]


async def test_file_content_listing_and_deletes(
    sdk: AsyncOpenAI, raw: httpx.AsyncClient, tmp_path: Path, db: AsyncConnection
) -> None:
    path = text_file(tmp_path, "shared.txt", "Rotor blades need balancing every season.")
    uploaded = await sdk.files.create(file=path, purpose="assistants")
    one = await sdk.vector_stores.create(name="one")
    two = await sdk.vector_stores.create(name="two")
    for store in (one, two):
        await sdk.vector_stores.files.create_and_poll(
            vector_store_id=store.id, file_id=uploaded.id, poll_interval_ms=POLL_MS
        )
    embedded_once = (
        await db.execute(text("SELECT count(*) FROM processed_documents"))
    ).scalar_one()

    content = await sdk.files.content(uploaded.id)
    described = FileObject.model_validate((await raw.get(f"/files/{uploaded.id}")).json())
    parsed = await sdk.vector_stores.files.content(file_id=uploaded.id, vector_store_id=one.id)
    files = [f.id async for f in sdk.files.list()]
    await sdk.vector_stores.files.delete(file_id=uploaded.id, vector_store_id=one.id)
    still_in_two = await sdk.vector_stores.files.retrieve(
        file_id=uploaded.id, vector_store_id=two.id
    )
    with pytest.raises(openai.NotFoundError):
        await sdk.vector_stores.files.retrieve(file_id=uploaded.id, vector_store_id=one.id)
    deleted_store = await sdk.vector_stores.delete(two.id)
    deleted_file = await sdk.files.delete(uploaded.id)

    assert content.read() == path.read_bytes()
    assert described.filename == "shared.txt" and described.bytes == path.stat().st_size
    assert [part.text for part in parsed.data] == ["Rotor blades need balancing every season."]
    assert files == [uploaded.id]
    assert embedded_once == 1
    assert still_in_two.status == "completed"
    assert deleted_store.deleted and deleted_file.deleted
    with pytest.raises(openai.NotFoundError):
        await sdk.files.retrieve(uploaded.id)
    remaining = (await db.execute(text("SELECT count(*) FROM documents"))).scalar_one()
    assert remaining == 0
    assert await settled_violations(db) == {}


async def test_a_file_deleted_is_removed_from_every_store(
    sdk: AsyncOpenAI, tmp_path: Path, db: AsyncConnection
) -> None:
    uploaded = await sdk.files.create(
        file=text_file(tmp_path, "gone.txt", "Hangar doors open at dawn."), purpose="assistants"
    )
    stores = [await sdk.vector_stores.create(name=n) for n in ("a", "b")]
    for store in stores:
        await sdk.vector_stores.files.create_and_poll(
            vector_store_id=store.id, file_id=uploaded.id, poll_interval_ms=POLL_MS
        )

    await sdk.files.delete(uploaded.id)

    for store in stores:
        assert (await sdk.vector_stores.retrieve(store.id)).file_counts.total == 0
    chunks = (await db.execute(text("SELECT count(*) FROM chunks"))).scalar_one()
    assert chunks == 0
    assert await settled_violations(db) == {}


async def test_an_unsupported_file_ends_failed_with_its_code(
    sdk: AsyncOpenAI, raw: httpx.AsyncClient, tmp_path: Path
) -> None:
    binary = tmp_path / "firmware.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    empty = text_file(tmp_path, "empty.txt", "")
    store = await sdk.vector_stores.create(name="s")

    refused = await sdk.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=binary, poll_interval_ms=POLL_MS
    )
    hollow = await sdk.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=empty, poll_interval_ms=POLL_MS
    )
    failed = await sdk.vector_stores.files.list(store.id, filter="failed")
    listed = (await raw.get(f"/vector_stores/{store.id}/files")).json()["data"]

    assert refused.status == "failed" and refused.last_error is not None
    assert refused.last_error.code == "unsupported_file"
    assert hollow.last_error is not None and hollow.last_error.code == "invalid_file"
    assert {f.id for f in failed.data} == {refused.id, hollow.id}
    assert all(VectorStoreFile.model_validate(item) for item in listed)
    assert (await sdk.vector_stores.retrieve(store.id)).file_counts.failed == 2


async def test_each_error_status_raises_the_sdks_exception(
    sdk: AsyncOpenAI, settings: Settings, tmp_path: Path
) -> None:
    store = await sdk.vector_stores.create(name="s")
    uploaded = await sdk.files.create(
        file=text_file(tmp_path, "a.txt", "Propellers spin."), purpose="assistants"
    )
    other = await sdk.files.create(
        file=text_file(tmp_path, "a.txt", "Another file, same name."), purpose="assistants"
    )
    await sdk.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=uploaded.id, poll_interval_ms=POLL_MS
    )

    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.vector_stores.retrieve("vs_missing")
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.vector_stores.search(store.id, query="x", max_num_results=51)
    with pytest.raises(openai.ConflictError):
        await sdk.vector_stores.files.create(vector_store_id=store.id, file_id=other.id)
    with pytest.raises(openai.UnprocessableEntityError):
        await sdk.vector_stores.files.update(
            file_id=uploaded.id, vector_store_id=store.id, attributes={"filename": "x"}
        )
    small = settings.model_copy(update={"max_upload_mb": 0.001})
    with app_server(small) as server:
        async with AsyncOpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0) as tiny:
            with pytest.raises(openai.APIStatusError) as too_large:
                await tiny.files.create(
                    file=text_file(tmp_path, "big.txt", "x" * 5000), purpose="assistants"
                )
    keyed = settings.model_copy(update={"api_keys": [SecretStr("right-key-0123456789")]})
    with app_server(keyed) as server:
        async with AsyncOpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0) as c:
            with pytest.raises(openai.AuthenticationError):
                await c.vector_stores.list()
        async with AsyncOpenAI(
            base_url=f"{server.url}/v1", api_key="right-key-0123456789", max_retries=0
        ) as c:
            assert [s.id for s in (await c.vector_stores.list()).data] == [store.id]

    assert "vs_missing" in missing.value.message
    assert bad.value.body is not None and "max_num_results" in str(bad.value.body)
    assert too_large.value.status_code == 413
    assert isinstance(too_large.value.body, dict) and "upload limit" in str(too_large.value.body)


async def test_file_batches_with_per_file_attributes(
    sdk: AsyncOpenAI, raw: httpx.AsyncClient, tmp_path: Path
) -> None:
    store = await sdk.vector_stores.create(name="batch")
    uploaded = [
        await sdk.files.create(
            file=text_file(tmp_path, f"part-{n}.txt", f"Part {n} of the wing assembly guide."),
            purpose="assistants",
        )
        for n in range(3)
    ]

    batch = await sdk.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id,
        files=[{"file_id": f.id, "attributes": {"part": n}} for n, f in enumerate(uploaded)],
        poll_interval_ms=POLL_MS,
    )
    listed = [
        f
        async for f in sdk.vector_stores.file_batches.list_files(
            batch_id=batch.id, vector_store_id=store.id, limit=2
        )
    ]
    more = await sdk.vector_stores.file_batches.upload_and_poll(
        store.id, files=[text_file(tmp_path, "extra.txt", "Extra notes.")], poll_interval_ms=POLL_MS
    )
    seen = (await raw.get(f"/vector_stores/{store.id}/file_batches/{batch.id}")).json()

    assert batch.status == "completed" and batch.file_counts.completed == 3
    assert sorted(f.attributes["part"] for f in listed if f.attributes) == [0, 1, 2]
    assert more.status == "completed" and more.file_counts.total == 1
    assert VectorStoreFileBatch.model_validate(seen).file_counts.total == 3
    assert (await sdk.vector_stores.retrieve(store.id)).file_counts.completed == 4
    with pytest.raises(openai.NotFoundError):
        await sdk.vector_stores.file_batches.create(
            vector_store_id=store.id, file_ids=[uploaded[0].id, "file-missing"]
        )


async def test_cancelling_a_batch_stops_the_files_not_processed_yet(
    sdk: AsyncOpenAI, tmp_path: Path, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    """One file's embedding is held by the fake upstream; the batch is cancelled meanwhile:
    that file ends cancelled (its document deleted, its job cancelled), the other stays."""
    gate = upstream.gate("HELDBACK")
    store = await sdk.vector_stores.create(name="cancel")
    quick = await sdk.files.create(
        file=text_file(tmp_path, "quick.txt", "Quick notes."), purpose="assistants"
    )
    await sdk.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=quick.id, poll_interval_ms=POLL_MS
    )
    slow = await sdk.files.create(
        file=text_file(tmp_path, "slow.txt", "HELDBACK notes that take a while."),
        purpose="assistants",
    )

    batch = await sdk.vector_stores.file_batches.create(
        vector_store_id=store.id, file_ids=[quick.id, slow.id]
    )
    await gate.until_arrived()
    cancelled = await sdk.vector_stores.file_batches.cancel(
        batch_id=batch.id, vector_store_id=store.id
    )
    gate.release()
    after = await sdk.vector_stores.file_batches.poll(
        batch.id, vector_store_id=store.id, poll_interval_ms=POLL_MS
    )

    assert batch.status == "in_progress"
    assert cancelled.status == "cancelled"
    assert cancelled.file_counts.cancelled == 1 and cancelled.file_counts.completed == 1
    assert after.status == "cancelled" and after.file_counts.in_progress == 0
    names = (await db.execute(text("SELECT filename FROM documents"))).scalars().all()
    assert names == ["quick.txt"]
    assert await settled_violations(db) == {}


async def test_objects_of_one_face_are_seen_through_the_others(
    sdk: AsyncOpenAI, served: ThreadedServer, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as api:
        created = await api.post("/api/collections", json={"id": "manuals", "name": "Manuals"})
        uploaded = await api.post(
            "/api/collections/manuals/documents",
            files={"file": ("direct.txt", b"Uploaded through the resource API.")},
            data={"metadata": '{"team": "support"}'},
        )
        store = await sdk.vector_stores.create(name="from-the-sdk")
        seen_as_collection = await api.get(f"/api/collections/{store.id}")
    document_id = uploaded.json()["id"]

    files = await sdk.vector_stores.files.list("manuals")
    one = await sdk.vector_stores.files.retrieve(
        file_id=f"file-{document_id.replace('-', '')}", vector_store_id="manuals"
    )
    found = await sdk.vector_stores.search("manuals", query="resource API")

    assert created.status_code == 201 and uploaded.status_code == 201
    assert seen_as_collection.status_code == 200
    assert seen_as_collection.json()["name"] == "from-the-sdk"
    assert [f.id for f in files.data] == [one.id]
    assert one.status == "completed" and one.attributes == {"team": "support"}
    assert found.data[0].file_id == one.id and found.data[0].filename == "direct.txt"
    assert {s.id async for s in sdk.vector_stores.list()} == {"manuals", store.id}


async def test_a_provider_failure_ends_failed_with_server_error(
    sdk: AsyncOpenAI, tmp_path: Path, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    """Every embedding call for this file fails (after the worker's retries): the file ends
    `failed` with `server_error`, and no chunk of it is stored."""
    upstream.gate("BROKENTEXT", fail_status=500).release()
    store = await sdk.vector_stores.create(name="s")

    added = await sdk.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=text_file(tmp_path, "broken.txt", "BROKENTEXT cannot be embedded."),
        poll_interval_ms=POLL_MS,
    )

    assert added.status == "failed" and added.last_error is not None
    assert added.last_error.code == "server_error"
    chunks = (await db.execute(text("SELECT count(*) FROM chunks"))).scalar_one()
    assert chunks == 0
    assert await settled_violations(db) == {}
