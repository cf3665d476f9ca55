"""Load run: many concurrent clients mixing search, upload and chat for a fixed time.

`ragstore serve` runs in its own process on a fresh embedded PostgreSQL, with the
fake OpenAI upstream (100 ms per call) in another. A few documents are loaded
first; then each client loops until the time is up, picking at random: a
vector, keyword or hybrid search; an upload of a small new document, or of one
identical file that every client keeps re-sending; `/api/chat` streamed as
text; `/api/rag-chat` streamed as server-sent events. Every client stops by
itself when the time is up (the run is bounded) and finishes its last request.

Afterwards PostgreSQL is asked directly whether anything acknowledged was lost:
every upload answered 2xx must be a `completed` document whose chunk rows are
all there, and the repeated file must be one document.

    python -m bench.load [--seconds 60] [--clients 50] [--latency 0.1]
"""

import argparse
import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import database, percentile, report, served
from bench.corpus import WORDS
from bench.upstream import UPSTREAM_EMBEDDINGS, fake_upstream, upstream_environment

PRELOADED_DOCUMENTS = 5
REPEATED_FILENAME = "handbook.txt"
# Share of each action in the mix: mostly reads, as in a chat application.
ACTIONS = {
    "search vector": 0.17,
    "search keyword": 0.17,
    "search hybrid": 0.17,
    "upload new": 0.12,
    "upload repeated": 0.05,
    "chat (text stream)": 0.16,
    "rag-chat (SSE)": 0.16,
}
CHAT_ANSWER = "Hello, world!"  # what the fake upstream streams


def text_of(generator: random.Random, name: str, paragraphs: int) -> bytes:
    body = "\n\n".join(
        f"{name} section {n}. " + " ".join(generator.choice(WORDS) for _ in range(60)) + "."
        for n in range(paragraphs)
    )
    return body.encode()


@dataclass
class Outcome:
    action: str
    seconds: float
    status: int | None  # None: no HTTP answer (connection error, timeout)
    error: str | None = None


@dataclass
class Load:
    client: httpx.AsyncClient
    collection: str
    deadline: float
    repeated: bytes
    outcomes: list[Outcome] = field(default_factory=list)
    # Document ids of every upload answered 2xx, and which were the repeated file.
    acknowledged: dict[str, str] = field(default_factory=dict)
    uploads_sent: Counter[str] = field(default_factory=Counter)
    uploads_acknowledged: Counter[str] = field(default_factory=Counter)

    async def client_loop(self, number: int) -> None:
        generator = random.Random(number)
        actions, weights = list(ACTIONS), list(ACTIONS.values())
        sequence = 0
        while time.monotonic() < self.deadline:
            action = generator.choices(actions, weights)[0]
            sequence += 1
            started = time.perf_counter()
            try:
                status, error = await self.act(action, generator, f"c{number}-{sequence}")
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            self.outcomes.append(Outcome(action, time.perf_counter() - started, status, error))

    async def act(self, action: str, generator: random.Random, name: str) -> tuple[int, str | None]:
        if action.startswith("search"):
            return await self.search(action.removeprefix("search "), generator)
        if action == "upload new":
            content = text_of(generator, name, 4)
            return await self.upload(f"{name}.txt", content, action, generator)
        if action == "upload repeated":
            return await self.upload(REPEATED_FILENAME, self.repeated, action, generator)
        if action == "chat (text stream)":
            return await self.chat()
        return await self.rag_chat(generator)

    async def search(self, mode: str, generator: random.Random) -> tuple[int, str | None]:
        response = await self.client.post(
            f"/api/collections/{self.collection}/search",
            json={"query": " ".join(generator.sample(WORDS, 3)), "k": 5, "mode": mode},
        )
        if response.status_code == 200 and not response.json()["results"]:
            return response.status_code, "no results"
        return response.status_code, None

    async def upload(
        self, filename: str, content: bytes, action: str, generator: random.Random
    ) -> tuple[int, str | None]:
        self.uploads_sent[action] += 1
        # Half through the original route, half through the resource route.
        if generator.random() < 0.5:
            response = await self.client.post(
                "/api/upload-document",
                files={"file": (filename, content, "text/plain")},
                data={"session_id": self.collection},
            )
        else:
            response = await self.client.post(
                f"/api/collections/{self.collection}/documents",
                files={"file": (filename, content, "text/plain")},
            )
        if response.is_success:
            body = response.json()
            self.acknowledged[str(body.get("document_id") or body["id"])] = action
            self.uploads_acknowledged[action] += 1
        return response.status_code, None

    async def chat(self) -> tuple[int, str | None]:
        body = {"developer_message": "You are terse.", "user_message": "Say hello"}
        async with self.client.stream("POST", "/api/chat", json=body) as response:
            answer = (await response.aread()).decode()
        if response.status_code == 200 and answer != CHAT_ANSWER:
            return response.status_code, f"unexpected answer {answer[:80]!r}"
        return response.status_code, None

    async def rag_chat(self, generator: random.Random) -> tuple[int, str | None]:
        body = {
            "user_message": "What about " + " ".join(generator.sample(WORDS, 3)) + "?",
            "session_id": self.collection,
        }
        headers = {"accept": "text/event-stream"}
        async with self.client.stream(
            "POST", "/api/rag-chat", json=body, headers=headers
        ) as response:
            events = (await response.aread()).decode()
        if response.status_code == 200 and "event: done" not in events:
            return response.status_code, "stream ended without a done event"
        return response.status_code, None


async def preload(client: httpx.AsyncClient) -> str:
    created = await client.post("/api/collections", json={"name": "load"})
    created.raise_for_status()
    collection: str = created.json()["id"]
    generator = random.Random(1)
    for n in range(PRELOADED_DOCUMENTS):
        response = await client.post(
            f"/api/collections/{collection}/documents",
            files={"file": (f"preloaded-{n}.txt", text_of(generator, f"pre{n}", 40), "text/plain")},
        )
        response.raise_for_status()
    return collection


async def verify(database_url: str, collection: str, load: Load) -> dict[str, Any]:
    """Ask PostgreSQL whether every acknowledged upload is complete, chunks and all."""
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT d.id::text, d.filename, d.status, d.chunk_count, "
                    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS stored "
                    "FROM documents d WHERE d.collection_id = :collection"
                ),
                {"collection": collection},
            )
        ).all()
        orphans = (
            await connection.execute(
                text(
                    "SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id "
                    "WHERE d.id IS NULL OR d.status <> 'completed'"
                )
            )
        ).scalar_one()
    await engine.dispose()
    documents = {row.id: row for row in rows}
    lost = [
        document_id
        for document_id in load.acknowledged
        if document_id not in documents
        or documents[document_id].status != "completed"
        or documents[document_id].stored == 0
        or documents[document_id].stored != documents[document_id].chunk_count
    ]
    return {
        "uploads_sent": dict(load.uploads_sent),
        "uploads_acknowledged": dict(load.uploads_acknowledged),
        "documents_acknowledged": len(load.acknowledged),
        "acknowledged_documents_verified": len(load.acknowledged) - len(lost),
        "lost_uploads": lost,
        "documents_by_status": dict(Counter(row.status for row in rows)),
        "repeated_file_documents": sum(row.filename == REPEATED_FILENAME for row in rows),
        "chunks_of_missing_or_unfinished_documents": orphans,
    }


def table(outcomes: list[Outcome], seconds: float) -> list[list[Any]]:
    by_action: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_action[outcome.action].append(outcome)
    rows = []
    for action, done in [*sorted(by_action.items()), ("all", outcomes)]:
        latencies = [o.seconds * 1000 for o in done]
        statuses = Counter(o.status for o in done)
        rows.append(
            [
                action,
                len(done),
                len(done) / seconds,
                percentile(latencies, 0.5),
                percentile(latencies, 0.99),
                sum(n for status, n in statuses.items() if status and status < 300),
                sum(n for status, n in statuses.items() if status and 400 <= status < 500),
                sum(n for status, n in statuses.items() if status and status >= 500),
                sum(1 for o in done if o.error),
            ]
        )
    return rows


def ragstore_process() -> psutil.Process:
    """The `ragstore serve` process this script started."""
    for child in psutil.Process().children(recursive=True):
        if "serve" in child.cmdline():
            return child
    raise RuntimeError("ragstore serve is not running")


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time of a process; for PostgreSQL's postmaster, of its backends (the pool keeps
    them alive through the run)."""
    try:
        if process.name() == "postgres":
            return sum(cpu_seconds(child) for child in process.children()) + _own(process)
    except psutil.NoSuchProcess:
        return 0.0
    return _own(process)


def _own(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


async def run(seconds: float, clients: int, latency: float) -> None:
    load_before = list(os.getloadavg())
    with (
        fake_upstream(latency) as upstream,
        database(**UPSTREAM_EMBEDDINGS) as (postgres, settings),
    ):
        assert settings.database_url
        async with (
            served(settings, **upstream_environment(upstream.url)) as base_url,
            httpx.AsyncClient(
                base_url=base_url,
                timeout=120,
                limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients),
            ) as client,
        ):
            collection = await preload(client)
            processes = {
                "ragstore_server": ragstore_process(),
                "load_generator": psutil.Process(),
                "fake_upstream": psutil.Process(upstream.process.pid),
                "postgres_backends": psutil.Process(postgres.server_pid),
            }
            cpu_before = {name: cpu_seconds(process) for name, process in processes.items()}
            load = Load(
                client,
                collection,
                deadline=time.monotonic() + seconds,
                repeated=text_of(random.Random(2), "handbook", 6),
            )
            started = time.perf_counter()
            await asyncio.gather(*(load.client_loop(n) for n in range(clients)))
            elapsed = time.perf_counter() - started
            cpu = {
                name: round((cpu_seconds(process) - cpu_before[name]) / elapsed, 2)
                for name, process in processes.items()
            }
            health = (await client.get("/api/health")).status_code
        checks = await verify(settings.database_url, collection, load)
    rows = table(load.outcomes, elapsed)
    total = rows[-1]
    errors = Counter(o.error.split(":")[0] for o in load.outcomes if o.error)
    statuses = Counter(str(o.status) for o in load.outcomes)
    report(
        "load",
        f"{clients} clients for {elapsed:.0f} s: {total[2]:.0f} requests/s, {total[7]} 5xx, "
        f"{len(checks['lost_uploads'])} lost of {checks['documents_acknowledged']} "
        "acknowledged documents",
        ["route", "requests", "requests/s", "p50 ms", "p99 ms", "2xx", "4xx", "5xx", "errors"],
        rows,
        {
            "seconds": seconds,
            "clients": clients,
            "latency_seconds": latency,
            "mix": ACTIONS,
            "status_codes": dict(statuses),
            "errors": dict(errors),
            "health_after": health,
            # Cores busy on average (1.0 = one core): the machine has two in all.
            "cpu_cores_used": cpu,
            "load_average_before": load_before,
            "verification": checks,
        },
    )
    for key, value in checks.items():
        print(f"{key}: {value}")
    print(f"cores used: {cpu}; load average before: {load_before}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1, help="upstream latency per call")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.seconds, arguments.clients, arguments.latency))


if __name__ == "__main__":
    main()
