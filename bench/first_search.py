"""The first search after a start: is ready really ready, and what does the CLI cost?

`ragstore serve` with the local model (384-d) restarts on an embedded PostgreSQL
holding one small document. The bench waits for /api/ready, then times the first
vector search over HTTP, the second right after it, and a third after a pause of a
second (the model was loaded before ready said so, so the first should cost what a
search after a pause does), and times `ragstore search` from the command line in
vector mode (which loads the model in its process) and in keyword mode (which does
not).

    python -m bench.first_search [--repeat 5]
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import database, median, report, served

TEXT = "To reset the X200, hold the power button for ten seconds. " * 20
PAUSE = 1.0
LOCAL = {"RAGSTORE_EMBEDDING_PROVIDER": "local", "RAGSTORE_EMBEDDING_MODEL": "all-MiniLM-L6-v2"}


async def _ready(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    for _ in range(1200):
        if (await client.get("/api/ready")).status_code == 200:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def _search(client: httpx.AsyncClient, question: str) -> float:
    """One vector search; each question is new, so its embedding is not cached."""
    started = time.perf_counter()
    answer = await client.post(
        "/api/collections/c/search", json={"query": question, "mode": "vector"}
    )
    answer.raise_for_status()
    return time.perf_counter() - started


def _cli_search(database_url: str, mode: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("ragstore")),
            "search",
            "reset",
            "-c",
            "c",
            "--mode",
            mode,
        ],
        env={
            **os.environ,
            **LOCAL,
            "DATABASE_URL": database_url,
            "RAGSTORE_MIGRATE_ON_START": "false",
        },
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


async def _upload(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await _ready(client)
        answer = await client.post(
            "/api/upload-document",
            files={"file": ("manual.txt", TEXT.encode())},
            data={"session_id": "c"},
        )
        answer.raise_for_status()


async def run(repeat: int) -> None:
    firsts, seconds, after_pause, waits = [], [], [], []
    with database(embedding_provider="local") as (_, settings):
        assert settings.database_url
        # The document goes in during a start of its own, so that every timed start
        # is the same: a restart over a database that already holds it.
        async with served(settings, **LOCAL) as url:
            await _upload(url)
        for attempt in range(repeat):
            # One client polls ready and then searches, so both searches go over an open
            # connection: opening one is the client's cost, not the server's.
            async with (
                served(settings, **LOCAL) as url,
                httpx.AsyncClient(base_url=url, timeout=60) as client,
            ):
                waits.append(await _ready(client))
                firsts.append(await _search(client, f"how do I reset it? ({attempt})"))
                seconds.append(await _search(client, f"which button resets it? ({attempt})"))
                # The model's inference threads go idle between requests; the first
                # search after ready is compared with one after the same kind of pause.
                await asyncio.sleep(PAUSE)
                after_pause.append(await _search(client, f"what resets it? ({attempt})"))
        vector = [_cli_search(settings.database_url, "vector") for _ in range(repeat)]
        keyword = [_cli_search(settings.database_url, "keyword") for _ in range(repeat)]
    rows = [
        ["start until /api/ready (s)", median(waits)],
        ["first vector search after ready (ms)", median(firsts) * 1000],
        ["second vector search, right after (ms)", median(seconds) * 1000],
        [f"a vector search after {PAUSE:g} s idle (ms)", median(after_pause) * 1000],
        ["`ragstore search --mode vector` (s, whole command)", median(vector)],
        ["`ragstore search --mode keyword` (s, whole command)", median(keyword)],
    ]
    report(
        "first_search",
        f"first search after a start, local model (384-d), median of {repeat}",
        ["", "value"],
        rows,
        {"repeat": repeat},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(run(parser.parse_args().repeat))


if __name__ == "__main__":
    main()
