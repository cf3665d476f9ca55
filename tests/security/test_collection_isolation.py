"""Collections are isolated: what one collection holds is never shown to, nor used for,
a request about another.

Two collections hold nearly the same documents, told apart by one secret word
each: the same file name with the same paragraph, an identical file (so the
second copy comes out of the processed-document cache), and a file of their
own. Every question names the *other* collection's secret word, so an
unscoped keyword list would rank the other collection's chunks first, and
the other collection's chunks are the closer vectors too. The assertions are
on what a user sees: result lists, `sources` events, the prompt the model
got, and 404s.
"""

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.chat import SSE, chat_requests, parse_events
from tests.support.fake_openai import FakeOpenAI
from tests.support.uploads import upload

HANDBOOK = (
    "Archive vault procedure. Badge in at the north door, sign the visitor ledger, wait for "
    "the duty guard and give the passphrase {secret} before you enter the archive vault."
)
ROSTER = (
    "Archive vault guard roster. The duty guard checks the passphrase {secret} at the north "
    "door every morning and locks the archive vault at night."
)
# Byte for byte the same in both collections.
FIRE_DRILL = (
    "Fire drill procedure. Leave by the nearest stairs, gather in the car park and wait for "
    "the warden to count everyone."
)
METADATA = '{"topic": "security"}'
SECRETS = {"alpha": "AMBERFALCON", "beta": "BLUEHERON"}


@dataclass(frozen=True)
class Tenant:
    """One collection as the test built it, with the ids PostgreSQL gave its rows."""

    id: str
    secret: str
    document_ids: dict[str, uuid.UUID]
    chunks_by_file: dict[str, frozenset[int]]

    @property
    def filenames(self) -> list[str]:
        return sorted(self.document_ids)

    @property
    def chunk_ids(self) -> frozenset[int]:
        return frozenset().union(*self.chunks_by_file.values())

    @property
    def secret_chunk_ids(self) -> frozenset[int]:
        """The chunks that carry this collection's secret word."""
        return self.chunks_by_file["handbook.txt"] | self.chunks_by_file[f"{self.id}-roster.txt"]


@dataclass(frozen=True)
class Tenants:
    alpha: Tenant
    beta: Tenant

    def pairs(self) -> list[tuple[Tenant, Tenant]]:
        """(asking collection, the other one), both ways round: a scope that is ignored
        can still look right from one side."""
        return [(self.alpha, self.beta), (self.beta, self.alpha)]


def question_naming(secret: str) -> str:
    return f"Which passphrase does the duty guard at the archive vault expect: is it {secret}?"


async def rows(db: AsyncConnection, sql: str, **params: object) -> list[Any]:
    """The first column of every row, read outside any request's transaction."""
    result = (await db.execute(text(sql), params)).scalars().all()
    await db.commit()
    return list(result)


async def chunk_ids_of_collection(db: AsyncConnection, collection_id: str) -> frozenset[int]:
    # Through the document's collection, not the chunk's own copy of it: a chunk
    # filed under the wrong collection is exactly what this suite looks for.
    return frozenset(
        await rows(
            db,
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE d.collection_id = :collection_id",
            collection_id=collection_id,
        )
    )


async def build_tenant(
    client: httpx.AsyncClient, db: AsyncConnection, collection_id: str, secret: str
) -> Tenant:
    files = {
        "handbook.txt": HANDBOOK.format(secret=secret),
        "fire-drill.txt": FIRE_DRILL,
        f"{collection_id}-roster.txt": ROSTER.format(secret=secret),
    }
    document_ids = {}
    for filename, content in files.items():
        response = await upload(
            client, content, filename, session_id=collection_id, metadata=METADATA
        )
        assert response.status_code == 200, response.text
        document_ids[filename] = uuid.UUID(response.json()["document_id"])
    return Tenant(
        id=collection_id,
        secret=secret,
        document_ids=document_ids,
        chunks_by_file={
            filename: frozenset(
                await rows(
                    db,
                    "SELECT id FROM chunks WHERE document_id = :document_id",
                    document_id=document_id,
                )
            )
            for filename, document_id in document_ids.items()
        },
    )


@pytest.fixture
async def tenants(client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection) -> Tenants:
    alpha = await build_tenant(client, db, "alpha", SECRETS["alpha"])
    beta = await build_tenant(client, db, "beta", SECRETS["beta"])
    # Six files, five embedded: beta's fire drill was copied from the cache.
    assert sum(request.path == "embeddings" for request in upstream.requests) == 5
    for tenant in (alpha, beta):
        # One chunk per file, each filed under its own collection.
        assert all(len(chunks) == 1 for chunks in tenant.chunks_by_file.values())
        assert await chunk_ids_of_collection(db, tenant.id) == tenant.chunk_ids
    return Tenants(alpha, beta)


def all_document_ids(tenants: Tenants) -> list[str]:
    return [str(i) for t in (tenants.alpha, tenants.beta) for i in t.document_ids.values()]


# Each filter matches documents of both collections: a filter must narrow a
# collection's search, never widen it to another collection.
FILTERS: dict[str, Callable[[Tenants], dict[str, Any] | None]] = {
    "no_filter": lambda _: None,
    "metadata_both_share": lambda _: {"type": "eq", "key": "topic", "value": "security"},
    "filename_both_have": lambda _: {"type": "eq", "key": "filename", "value": "handbook.txt"},
    # An OR must stay inside the collection's scope: `scope AND (a OR b)`, never
    # `scope AND a OR b`.
    "or_with_every_document_id": lambda tenants: {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "topic", "value": "security"},
            {"type": "in", "key": "document_id", "value": all_document_ids(tenants)},
        ],
    },
}


async def search_both_routes(
    client: httpx.AsyncClient, collection_id: str, body: dict[str, Any]
) -> list[list[dict[str, Any]]]:
    """The results of the resource route and of the original app's `session_id` route."""
    responses = [
        await client.post(f"/api/collections/{collection_id}/search", json=body),
        await client.post("/api/search", json={**body, "session_id": collection_id}),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
    return [response.json()["results"] for response in responses]


SEARCH_MODES = ["vector", "keyword", "hybrid"]


@pytest.mark.parametrize("mode", SEARCH_MODES)
async def test_search_returns_only_the_searched_collections_chunks(
    client: httpx.AsyncClient, tenants: Tenants, mode: str
) -> None:
    for (asking, other), (filter_name, build_filter) in itertools.product(
        tenants.pairs(), FILTERS.items()
    ):
        body = {
            "query": question_naming(other.secret),
            "k": 10,
            "mode": mode,
            "filters": build_filter(tenants),
        }
        case = f"{asking.id} searched with {filter_name}"
        for results in await search_both_routes(client, asking.id, body):
            found = {result["chunk_id"] for result in results}
            assert found <= asking.chunk_ids, f"{case}: shown chunks of another collection"
            assert {uuid.UUID(r["document_id"]) for r in results} <= set(
                asking.document_ids.values()
            ), case
            assert not any(other.secret in result["text"] for result in results), case
            # Not vacuous: the asking collection's own matches are there.
            expected = (
                asking.chunks_by_file["handbook.txt"]
                if filter_name == "filename_both_have"
                else asking.secret_chunk_ids
            )
            assert expected <= found, case


async def test_a_filter_on_another_collections_document_ids_finds_nothing(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    for (asking, other), mode in itertools.product(tenants.pairs(), SEARCH_MODES):
        others = [str(document_id) for document_id in other.document_ids.values()]
        body = {
            "query": question_naming(other.secret),
            "k": 10,
            "mode": mode,
            "filters": {"type": "in", "key": "document_id", "value": others},
        }

        assert await search_both_routes(client, asking.id, body) == [[], []], (asking.id, mode)


CHAT_ROUTES = {
    "rag_chat": ("/api/rag-chat", {}),
    "chat_with_session": ("/api/chat", {"developer_message": "You work at the front desk."}),
}


def context_sent(upstream: FakeOpenAI, question: str) -> str:
    """The context block of the one prompt sent upstream since the last reset.

    The question is cut off: it names the other collection's secret on purpose.
    """
    (sent,) = chat_requests(upstream)
    instructions, user = sent["messages"]
    assert user["content"].startswith("Context:\n\n")
    assert user["content"].endswith(f"\n\nQuestion: {question}")
    assert not any(secret in instructions["content"] for secret in SECRETS.values())
    return str(user["content"]).removesuffix(f"Question: {question}")


@pytest.mark.parametrize("events", [False, True], ids=["text", "sse"])
@pytest.mark.parametrize("route", CHAT_ROUTES)
async def test_rag_chat_puts_only_the_asking_collections_chunks_before_the_model(
    client: httpx.AsyncClient, upstream: FakeOpenAI, tenants: Tenants, route: str, events: bool
) -> None:
    path, extra = CHAT_ROUTES[route]

    for asking, other in tenants.pairs():
        upstream.requests.clear()
        question = question_naming(other.secret)

        response = await client.post(
            path,
            json={**extra, "user_message": question, "session_id": asking.id},
            headers=SSE if events else None,
        )

        assert response.status_code == 200, response.text
        context = context_sent(upstream, question)
        assert asking.secret in context
        assert other.secret not in context
        if not events:
            # The model was asked, and its answer is what the user reads.
            assert response.text == "".join(upstream.chat_tokens)
            continue
        events_seen = parse_events(response.text)
        assert events_seen[0][0] == "sources"
        sources = events_seen[0][1]["sources"]
        assert {source["chunk_id"] for source in sources} >= asking.secret_chunk_ids
        assert {source["chunk_id"] for source in sources} <= asking.chunk_ids
        assert {uuid.UUID(source["document_id"]) for source in sources} <= set(
            asking.document_ids.values()
        )
        # One context block per source: nothing reached the model unlisted.
        assert context.count("[Source: ") == len(sources)


async def test_document_and_chunk_listings_show_only_the_collections_own(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    for asking, other in tenants.pairs():
        listed = (await client.get(f"/api/collections/{asking.id}/documents")).json()
        assert listed["total"] == 3
        assert {uuid.UUID(d["id"]) for d in listed["data"]} == set(asking.document_ids.values())
        assert {d["collection_id"] for d in listed["data"]} == {asking.id}

        chunks_seen = set()
        for document_id in asking.document_ids.values():
            response = await client.get(
                f"/api/collections/{asking.id}/documents/{document_id}/chunks"
            )
            assert response.status_code == 200
            chunks = response.json()["data"]
            assert not any(other.secret in chunk["text"] for chunk in chunks)
            chunks_seen |= {chunk["id"] for chunk in chunks}
        assert chunks_seen == asking.chunk_ids

    collections = (await client.get("/api/collections")).json()["data"]
    assert {c["id"]: c["document_count"] for c in collections} == {"alpha": 3, "beta": 3}


async def test_another_collections_document_ids_are_404_under_the_wrong_path(
    client: httpx.AsyncClient, db: AsyncConnection, tenants: Tenants
) -> None:
    for asking, other in tenants.pairs():
        for filename, document_id in other.document_ids.items():
            path = f"/api/collections/{asking.id}/documents/{document_id}"
            answers = [
                await client.get(path),
                await client.get(f"{path}/chunks"),
                await client.delete(path),
                # 404, not 409 "not failed": the answer must not reveal the document.
                await client.post(f"{path}/retry"),
            ]

            assert [a.status_code for a in answers] == [404] * 4, (filename, answers)
            assert not any(other.secret in a.text for a in answers)

    # The refused deletes deleted nothing.
    for tenant in (tenants.alpha, tenants.beta):
        assert await chunk_ids_of_collection(db, tenant.id) == tenant.chunk_ids


async def test_original_session_routes_list_only_the_sessions_own_documents(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    listed = (await client.get("/api/sessions")).json()
    by_id = {s["session_id"]: sorted(s["documents"]) for s in listed["sessions"]}

    assert by_id == {"alpha": tenants.alpha.filenames, "beta": tenants.beta.filenames}
    for tenant in (tenants.alpha, tenants.beta):
        session = (await client.get(f"/api/session/{tenant.id}")).json()
        assert sorted(session["documents"]) == tenant.filenames
        assert session["document_count"] == 3


async def test_original_delete_routes_touch_only_their_own_session(
    client: httpx.AsyncClient, upstream: FakeOpenAI, db: AsyncConnection, tenants: Tenants
) -> None:
    alpha, beta = tenants.alpha, tenants.beta

    # A document name only the other session has is not found in this one.
    refused = await client.delete(f"/api/documents/{alpha.id}/{beta.id}-roster.txt")
    assert refused.status_code == 404

    # Both sessions have a handbook.txt: only the named session's goes.
    deleted = await client.delete(f"/api/documents/{alpha.id}/handbook.txt")
    assert deleted.status_code == 200
    assert sorted(deleted.json()["remaining_documents"]) == ["alpha-roster.txt", "fire-drill.txt"]
    assert await chunk_ids_of_collection(db, beta.id) == beta.chunk_ids

    assert (await client.delete(f"/api/session/{alpha.id}")).status_code == 200
    assert (await client.get(f"/api/session/{alpha.id}")).status_code == 404
    assert await chunk_ids_of_collection(db, beta.id) == beta.chunk_ids
    survivor = (await client.get(f"/api/session/{beta.id}")).json()
    assert sorted(survivor["documents"]) == beta.filenames

    # The survivor still answers from all of its own documents.
    question = question_naming(alpha.secret)
    answer = await client.post(
        "/api/rag-chat", json={"user_message": question, "session_id": beta.id}, headers=SSE
    )
    sources = parse_events(answer.text)[0][1]["sources"]
    assert {source["chunk_id"] for source in sources} >= beta.secret_chunk_ids
    assert beta.secret in context_sent(upstream, question)
