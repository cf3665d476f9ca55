"""Benchmark 6: what ragstore adds to a streamed chat, against calling the upstream directly.

Time to first byte and total time of `POST /api/chat` (ragstore served by
uvicorn in its own process) and of the same request sent straight to the
OpenAI-compatible server, alternating, over many requests.

    python -m bench.chat_overhead [--requests 200] [--latency 0.05]
"""

import argparse
import asyncio
import time

import httpx

from bench.common import database, percentile, report, served
from bench.upstream import fake_upstream

BODY = {"developer_message": "You are terse.", "user_message": "Say hello", "model": "gpt-4.1-mini"}


async def timed_stream(
    client: httpx.AsyncClient, url: str, payload: dict[str, object]
) -> tuple[float, float]:
    """Seconds to the first body byte and to the end of the stream."""
    started = time.perf_counter()
    first = None
    async with client.stream("POST", url, json=payload) as response:
        response.raise_for_status()
        async for _ in response.aiter_bytes():
            if first is None:
                first = time.perf_counter() - started
    total = time.perf_counter() - started
    return first or total, total


async def run(requests: int, latency: float) -> None:
    with fake_upstream(latency) as upstream, database() as (_, settings):
        async with served(
            settings, OPENAI_BASE_URL=upstream.url, OPENAI_API_KEY="bench"
        ) as base_url:
            ragstore_url = f"{base_url}/api/chat"
            direct_url = f"{upstream.url}/chat/completions"
            direct_body = {
                "model": "gpt-4.1-mini",
                "stream": True,
                "messages": [
                    {"role": "developer", "content": BODY["developer_message"]},
                    {"role": "user", "content": BODY["user_message"]},
                ],
            }
            async with httpx.AsyncClient(
                timeout=30, headers={"authorization": "Bearer bench"}
            ) as client:
                for _ in range(5):  # warm both paths
                    await timed_stream(client, ragstore_url, BODY)
                    await timed_stream(client, direct_url, direct_body)
                direct, via = [], []
                for _ in range(requests):  # alternate the contenders
                    direct.append(await timed_stream(client, direct_url, direct_body))
                    via.append(await timed_stream(client, ragstore_url, BODY))
    rows = []
    for label, index in (("time to first byte", 0), ("total", 1)):
        for share, name in ((0.5, "p50"), (0.95, "p95")):
            straight = percentile([t[index] for t in direct], share) * 1000
            through = percentile([t[index] for t in via], share) * 1000
            rows.append([f"{label} {name}", straight, through, through - straight])
    added = rows[0][3]
    report(
        "chat_overhead",
        f"/api/chat vs the upstream directly, {requests} requests each, "
        f"{latency * 1000:.0f} ms upstream latency: {added:.1f} ms added at p50 (first byte)",
        ["measure (ms)", "upstream directly", "through ragstore", "added"],
        rows,
        {"requests": requests, "latency_seconds": latency},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.requests, arguments.latency))


if __name__ == "__main__":
    main()
