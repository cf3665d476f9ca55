"""Random traffic through a provider failing one call in five: several clients upload,
re-upload, delete, retry and search at once for a few seconds (the full size is
`python -m bench.soak`); some background uploads are made to fail often, so there
are failed documents (and, in the full run, retries of them). No answer is a 5xx,
and every invariant holds afterwards."""

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.fake_openai import FakeOpenAI
from tests.support.invariants import settled_violations
from tests.support.servers import serve_app
from tests.support.settings import with_faulty_provider
from tests.support.soak import FLAKY_MARKER, FLAKY_RATE, soak


async def test_random_traffic_through_a_faulty_provider_keeps_every_invariant(
    settings: Settings, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    upstream.fail_randomly(0.2, seed=11)
    upstream.make_flaky(FLAKY_MARKER, FLAKY_RATE)
    configured = with_faulty_provider(settings, worker_concurrency=2, embedding_batch_size=4)
    async with serve_app(configured, client_timeout=120) as client:
        outcome = await soak(client, clients=6, seconds=8, seed=3)

    assert outcome.unexpected == []
    assert sum(outcome.requests.values()) >= 40
    assert outcome.requests["delete document"] and outcome.requests["upload in background"]
    assert sum(upstream.faults["embeddings"].values()) > 0
    assert await settled_violations(db, outcome.deleted_collections()) == {}
