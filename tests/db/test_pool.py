"""No pooled connection is held while the model provider works: with the pool at two
connections, uploads and RAG chats waiting on the provider leave a search its connection."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
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
