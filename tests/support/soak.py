"""Random traffic from several clients at once: uploads (new and changed, sync and
background), deletes of documents and collections, retries and searches. Used by the
soak test in `make test` (small) and by `bench/soak.py` (full size)."""

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.support.uploads import PROSE

COLLECTIONS = ("north", "south", "east")
FILENAMES = ("handbook.txt", "notes.txt", "faq.md", "specs.txt")
ACTIONS = {
    "upload": 0.35,
    "upload in background": 0.15,
    "delete document": 0.12,
    "delete collection": 0.02,
    "retry failed": 0.05,
    "search": 0.30,
}
# Some background uploads are of files the provider finds hard (make_flaky): they often
# fail past their retries, so there are failed documents to retry. Each has a name (and
# so content) of its own: a cached copy would never fail, and a re-upload would replace
# it before it failed. (Never synchronous: an upload failing at the provider is a 502.)
FLAKY_PREFIX = "flaky-"
# They go to a collection of their own, which is never deleted whole (a deleted collection
# cancels its jobs before a worker gets to them, and nothing would be left to retry).
FLAKY_COLLECTION = "flaky"
FLAKY_MARKER = "[flaky]"
FLAKY_RATE = 0.97
# What a client may be told in a race it lost, besides success: never a 5xx.
EXPECTED = {200, 201, 202, 204, 404, 409}
TERMINAL = ("succeeded", "failed", "cancelled", "superseded")


@dataclass
class SoakOutcome:
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    # Each unexpected answer: the action, its status and body.
    unexpected: list[tuple[str, int, str]] = field(default_factory=list)
    # When each successful DELETE of a collection was sent, and when each successful
    # upload into one answered.
    deletes_sent: list[tuple[str, float]] = field(default_factory=list)
    uploads_answered: list[tuple[str, float]] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)

    def deleted_collections(self) -> list[str]:
        """The collections that must be gone: deleted, and no upload into them succeeded
        after that DELETE was sent. (One that answered later may have been processed after
        the delete, and created the collection anew, as the original route does; one that
        answered before it was sent cannot have.)"""
        last_delete: dict[str, float] = {}
        for collection, sent in self.deletes_sent:
            last_delete[collection] = max(sent, last_delete.get(collection, sent))
        return sorted(
            collection
            for collection, sent in last_delete.items()
            if not any(c == collection and t > sent for c, t in self.uploads_answered)
        )


def _content(generator: random.Random, filename: str) -> str:
    """One of three versions of the file, so a re-upload often changes it."""
    flaky = filename.startswith(FLAKY_PREFIX)
    version = 0 if flaky else generator.randrange(3)
    marker = FLAKY_MARKER if flaky else ""
    return "".join(f"{filename} v{version} part {n}{marker}. {PROSE}" for n in range(3))


async def _failed_document(
    client: httpx.AsyncClient, generator: random.Random
) -> tuple[str, str] | None:
    """A failed document of any collection, as (collection, document id), if there is one."""
    for collection in generator.sample([*COLLECTIONS, FLAKY_COLLECTION], len(COLLECTIONS) + 1):
        listed = await client.get(f"/api/collections/{collection}/documents")
        documents = listed.json()["data"] if listed.status_code == 200 else []
        failed = [d["id"] for d in documents if d["status"] == "failed"]
        if failed:
            return collection, generator.choice(failed)
    return None


async def _act(client: httpx.AsyncClient, generator: random.Random, outcome: SoakOutcome) -> None:
    action = generator.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
    collection = generator.choice(COLLECTIONS)
    filename = generator.choice(FILENAMES)
    if action.startswith("upload"):
        background = "background" in action
        if background and generator.random() < 0.2:
            filename = f"{FLAKY_PREFIX}{generator.randrange(10**9)}.txt"
            collection = FLAKY_COLLECTION
        route = "/api/upload-document" + ("?wait=false" if background else "")
        response = await client.post(
            route,
            files={"file": (filename, _content(generator, filename).encode())},
            data={"session_id": collection},
        )
        if response.status_code == 202:
            outcome.jobs.append(response.json()["job_id"])
        if response.status_code in (200, 202):
            outcome.uploads_answered.append((collection, _now()))
    elif action == "delete document":
        listed = await client.get(f"/api/collections/{collection}/documents")
        documents = listed.json()["data"] if listed.status_code == 200 else []
        chosen = generator.choice(documents)["id"] if documents else str(uuid.uuid4())
        response = await client.delete(f"/api/collections/{collection}/documents/{chosen}")
    elif action == "delete collection":
        sent = _now()
        response = await client.delete(f"/api/collections/{collection}")
        if response.status_code == 204:
            outcome.deletes_sent.append((collection, sent))
    elif action == "retry failed":
        failed = await _failed_document(client, generator)
        if failed is None:
            return
        collection, document_id = failed
        response = await client.post(f"/api/collections/{collection}/documents/{document_id}/retry")
        if response.status_code == 202:
            outcome.jobs.append(response.json()["id"])
    else:
        mode = generator.choice(("vector", "keyword", "hybrid"))
        response = await client.post(
            f"/api/collections/{collection}/search", json={"query": "HNSW graph", "mode": mode}
        )
    outcome.requests[action] += 1
    outcome.statuses[response.status_code] += 1
    if response.status_code not in EXPECTED:
        outcome.unexpected.append((action, response.status_code, response.text[:300]))


async def soak(
    client: httpx.AsyncClient, clients: int, seconds: float, seed: int = 0
) -> SoakOutcome:
    """`clients` clients acting at random for `seconds`; then every background job is
    waited for, so the database is quiet when this returns."""
    outcome = SoakOutcome()
    deadline = asyncio.get_running_loop().time() + seconds

    async def one_client(number: int) -> None:
        generator = random.Random(seed * 1000 + number)
        while asyncio.get_running_loop().time() < deadline:
            await _act(client, generator, outcome)

    await asyncio.gather(*(one_client(n) for n in range(clients)))
    for job_id in outcome.jobs:
        for _ in range(1200):
            job = (await client.get(f"/api/jobs/{job_id}")).json()
            if job["state"] in TERMINAL:
                break
            await asyncio.sleep(0.1)
    return outcome


def _now() -> float:
    return asyncio.get_running_loop().time()
