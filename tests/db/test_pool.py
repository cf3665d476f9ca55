"""No pooled connection is held while the model provider works: with the pool at two
connections, uploads and RAG chats waiting on the provider leave a search its connection."""

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.db.outage import DATABASE_BUSY
from tests.support.chat import SSE
from tests.support.fake_openai import FakeOpenAI
from tests.support.invariants import settled_violations
from tests.support.servers import serve_app
from tests.support.uploads import long_text, upload

WAITING = 6  # three times the pool


async def test_uploads_and_chats_waiting_on_the_provider_leave_the_pool_to_others(
    settings: Settings, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    tiny_pool = settings.model_copy(update={"db_pool_size": 1})
    async with serve_app(tiny_pool, client_timeout=60) as client:
        await upload(client, long_text(2), "seed.txt", session_id="s")
        gate = upstream.gate("HELD")
        uploads = [
            asyncio.create_task(
                upload(client, f"HELD upload {n}. " + long_text(2), f"held{n}.txt", session_id="s")
            )
            for n in range(WAITING)
        ]
        chats = [
            asyncio.create_task(
                client.post(
                    "/api/rag-chat",
                    json={"user_message": f"HELD question {n} about HNSW", "session_id": "s"},
                    headers=SSE,
                )
            )
            for n in range(WAITING)
        ]
        await gate.until_arrived()
        await asyncio.sleep(0.5)  # every held request is waiting on the provider now

        search = await asyncio.wait_for(
            client.post("/api/collections/s/search", json={"query": "HNSW", "mode": "keyword"}),
            timeout=10,
        )
        gate.release()
        answers = await asyncio.gather(*uploads, *chats)

    assert search.status_code == 200, search.text
    assert search.json()["results"]
    assert [a.status_code for a in answers] == [200] * (2 * WAITING), [a.text for a in answers]
    assert await settled_violations(db) == {}


async def test_reads_keep_their_own_pool_and_a_full_write_pool_is_a_503(
    settings: Settings, db: AsyncConnection
) -> None:
    tight = settings.model_copy(
        update={"db_pool_size": 1, "db_read_pool_size": 1, "db_pool_timeout_seconds": 0.5}
    )
    async with serve_app(tight) as client:
        await upload(client, long_text(2), session_id="s")
        # Writers of collections now wait on this lock, each holding a write connection.
        await db.execute(text("LOCK TABLE collections IN ACCESS EXCLUSIVE MODE"))
        blocked = [
            asyncio.create_task(client.post("/api/collections", json={"name": f"n{n}"}))
            for n in range(2)
        ]
        await asyncio.sleep(1.0)
        busy = await client.post("/api/collections", json={"name": "third"})
        search = await client.post(
            "/api/collections/s/search", json={"query": "HNSW", "mode": "keyword"}
        )
        await db.commit()
        created = await asyncio.gather(*blocked)

    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert busy.json() == {"detail": DATABASE_BUSY}
    assert search.status_code == 200
    assert search.json()["results"]
    assert [answer.status_code for answer in created] == [201, 201]
