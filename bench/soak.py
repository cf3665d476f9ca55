"""Soak run: many clients of random uploads, re-uploads, deletes, retries and searches
for a fixed time, through a provider that fails a share of its calls.

`ragstore serve` (with its worker) runs in its own process on a fresh embedded
PostgreSQL; the fake OpenAI server, in another, fails 20% of calls the ways
real providers do. Every client stops by itself when the time is up, every
background job is waited for, and then PostgreSQL is asked whether any of the
invariants broke (`tests/support/invariants.py`). The same traffic runs in
`make test` at a small size (`tests/ingestion/test_soak.py`).

    python -m bench.soak [--seconds 60] [--clients 20] [--failure-rate 0.2]
"""

import argparse
import asyncio

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import database, report, served, timer
from bench.upstream import fake_upstream, upstream_environment
from tests.support.invariants import violations
from tests.support.soak import FLAKY_MARKER, FLAKY_RATE, soak


async def run(seconds: float, clients: int, failure_rate: float) -> None:
    with (
        fake_upstream(0.05, failure_rate, (FLAKY_MARKER, FLAKY_RATE)) as upstream,
        database() as (_, settings),
    ):
        environment = upstream_environment(
            upstream.url,
            RAGSTORE_WORKER_IN_PROCESS="true",
            RAGSTORE_EMBEDDING_MAX_ATTEMPTS="10",
            # Short backoff, as in the tests: the run is about races, not about waiting.
            RAGSTORE_EMBEDDING_RETRY_MAX_WAIT_SECONDS="0.2",
            RAGSTORE_EMBEDDING_BATCH_SIZE="4",
            RAGSTORE_UPSTREAM_TIMEOUT_SECONDS="2",
        )
        async with (
            served(settings, **environment) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=120) as client,
        ):
            with timer() as elapsed:
                outcome = await soak(client, clients, seconds, seed=1)
        assert settings.database_url
        engine = create_async_engine(settings.database_url)
        async with engine.connect() as connection:
            broken = await violations(connection, outcome.deleted_collections())
        await engine.dispose()
    rows = [[action, count] for action, count in sorted(outcome.requests.items())]
    rows += [[f"status {status}", count] for status, count in sorted(outcome.statuses.items())]
    rows += [
        ["answers outside 2xx/404/409", len(outcome.unexpected)],
        ["broken invariants", sum(broken.values())],
        ["seconds (with the jobs' wait)", round(elapsed[0], 1)],
    ]
    report(
        "soak",
        f"soak: {clients} clients for {seconds:g} s, {failure_rate:.0%} of provider calls failing",
        ["", "count"],
        rows,
        {"seconds": seconds, "clients": clients, "failure_rate": failure_rate, "broken": broken},
    )
    for unexpected in outcome.unexpected[:10]:
        print("unexpected:", *unexpected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--failure-rate", type=float, default=0.2)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.seconds, arguments.clients, arguments.failure_rate))


if __name__ == "__main__":
    main()
