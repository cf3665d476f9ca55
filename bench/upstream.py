"""The model provider of every benchmark: the tests' fake OpenAI server, in its own process."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

# ragstore embeds through the fake upstream as OpenAI's model at 384 dimensions.
UPSTREAM_EMBEDDINGS = {
    "embedding_provider": "openai",
    "embedding_model": "text-embedding-3-small",
    "embedding_dimensions": 384,
}


@dataclass
class Upstream:
    """The fake OpenAI server in its own process, so its work never slows the measured code."""

    url: str
    process: subprocess.Popen[str]


@contextmanager
def fake_upstream(
    latency: float,
    failure_rate: float = 0.0,
    flaky: tuple[str, float] | None = None,
    dense: bool = False,
) -> Iterator[Upstream]:
    """The server answering after `latency` seconds, failing `failure_rate` of its calls
    (and `flaky`'s rate of the calls whose input contains its marker), with dense vectors
    (sums of random word vectors) when `dense`, hashed words' slots otherwise."""
    command = [sys.executable, "-m", "tests.support.fake_openai", "--latency", str(latency)]
    command += ["--failure-rate", str(failure_rate)]
    if dense:
        command.append("--dense")
    if flaky is not None:
        command += ["--flaky-marker", flaky[0], "--flaky-rate", str(flaky[1])]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        # A provider's work is not on the cores measured here. Each call is computed in a
        # thread of its own already; OpenBLAS's threads on top of those spun on the cores
        # ragstore is measured on (1.2 s of CPU for two 1 MB uploads on 2 cores, against
        # 0.8 s with one BLAS thread: benchmark 1b, session 21).
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    try:
        yield Upstream(url, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def embedding_calls(url: str) -> int:
    stats = httpx.get(f"{url}/_stats").json()
    return int(stats["requests"].get("embeddings", 0))


def cpu_seconds(upstream: Upstream) -> float:
    """The CPU time the fake upstream has spent so far: on this machine it computes its
    answers on the same cores that ragstore is measured on, which a real provider does not."""
    times = psutil.Process(upstream.process.pid).cpu_times()
    return float(times.user + times.system)


def upstream_environment(url: str, **extra: str) -> dict[str, str]:
    """The variables of a served ragstore that embeds and chats through the fake upstream."""
    settings = {f"RAGSTORE_{key.upper()}": str(value) for key, value in UPSTREAM_EMBEDDINGS.items()}
    return {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "bench", **settings, **extra}
