"""The server loads its embedding model as it starts, in the background, and says when it
is ready: `model` in /api/health, and /api/ready answering 503 until then."""

import asyncio
from collections.abc import Sequence

import httpx
import numpy as np
import pytest

from app.core.config import Settings
from app.embeddings.base import EmbeddedParts, EmbeddingModel
from app.embeddings.warm_up import ModelWarmUp
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import serve_app


class HeldModel(EmbeddingModel):
    """A model whose loading waits for the test (and may fail)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__("held", 3)
        self.loaded = asyncio.Event()
        self.fail = fail

    async def warm_up(self) -> None:
        await self.loaded.wait()
        if self.fail:
            raise RuntimeError("no weights")

    async def embedded_parts(self, texts: Sequence[str]) -> EmbeddedParts:
        yield 0, np.zeros((len(texts), 3), dtype=np.float32)


@pytest.mark.parametrize(("fail", "after"), [(False, "ready"), (True, "failed")])
async def test_the_warm_up_is_loading_until_the_model_is_loaded(fail: bool, after: str) -> None:
    model = HeldModel(fail=fail)
    warm_up = ModelWarmUp(model)
    warm_up.start()
    await asyncio.sleep(0.05)
    before = warm_up.state

    model.loaded.set()
    for _ in range(100):
        if warm_up.state != "loading":
            break
        await asyncio.sleep(0.01)

    assert before == "loading"
    assert warm_up.state == after
    await warm_up.stop()


async def wait_until_ready(client: httpx.AsyncClient) -> list[int]:
    """The statuses /api/ready answered, polled until a 200 (60 s at most)."""
    answers = []
    for _ in range(600):
        answer = await client.get("/api/ready")
        answers.append(answer.status_code)
        if answer.status_code == 200:
            break
        assert answer.headers["retry-after"] == "1"
        await asyncio.sleep(0.1)
    return answers


async def test_health_and_ready_say_ready_with_a_remote_provider(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    """Nothing to load; the searches are warmed up (with no call to the provider)."""
    statuses = await wait_until_ready(client)
    health = (await client.get("/api/health")).json()
    ready = await client.get("/api/ready")

    assert statuses[-1] == 200
    assert upstream.requests == []

    assert health["model"] == "ready"
    assert health["embedding_model"] == "text-embedding-3-small"
    assert health["embedding_dimensions"] == 384
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_the_local_model_is_loaded_before_ready_says_so(settings: Settings) -> None:
    local = settings.model_copy(
        update={"embedding_provider": "local", "embedding_model": "all-MiniLM-L6-v2"}
    )
    async with serve_app(local, client_timeout=60) as client:
        loading = await client.get("/api/ready")
        answers = await wait_until_ready(client)
        health = (await client.get("/api/health")).json()

    assert answers[-1] == 200
    assert set(answers) <= {200, 503}
    if loading.status_code == 503:
        assert loading.json()["detail"] == "the embedding model all-MiniLM-L6-v2 is loading"
    assert health["model"] == "ready" and health["embedding_dimensions"] == 384
