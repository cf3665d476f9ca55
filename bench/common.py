"""What every benchmark shares: real parts started once, timing, and the results table.

Each benchmark prints a table and writes `bench/results/<name>.json` with its
inputs, the machine, and the numbers. Nothing here is a test: numbers are
reported, never asserted.
"""

import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from app.core.config import Settings
from app.db import migrate
from app.db.embedded import EmbeddedPostgres

# Smoke runs (the test suite) write elsewhere, so they never replace real results.
RESULTS = Path(
    os.environ.get("RAGSTORE_BENCH_RESULTS", Path(__file__).resolve().parent / "results")
)
console = Console(width=max(shutil.get_terminal_size().columns, 180))


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        # 1, 5 and 15 minute load averages when the table is written: other work
        # on the machine (tests, other benchmarks) skews the numbers.
        "load_average": list(os.getloadavg()),
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextmanager
def timer() -> Iterator[list[float]]:
    """`with timer() as elapsed:` ... then `elapsed[0]` is the seconds taken."""
    elapsed: list[float] = []
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - started)


@contextmanager
def database(**settings_overrides: Any) -> Iterator[tuple[EmbeddedPostgres, Settings]]:
    """A fresh embedded PostgreSQL, migrated, and settings pointing at it."""
    data_dir = Path(tempfile.mkdtemp(prefix="ragstore-bench-"))
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        migrate_on_start=False,
        worker_in_process=False,
        **settings_overrides,
    )
    # Alembic runs its own event loop: keep it off the caller's.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(migrate.upgrade, settings, url).result()
    try:
        yield server, settings
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def dimension_list(text: str) -> list[int]:
    """`--dimensions 1536,384` as [1536, 384]: the embedding sizes a benchmark runs at."""
    return [int(size) for size in text.split(",")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerURL(str):
    """The base URL of a served ragstore, which also knows the server's process id."""

    pid: int


@asynccontextmanager
async def served(settings: Settings, **environment: str) -> AsyncIterator[ServerURL]:
    """`ragstore serve` in its own process on a free port; yields its base URL once healthy."""
    assert settings.database_url
    command = [str(Path(sys.executable).with_name("ragstore")), "serve"]
    defaults = {
        "DATABASE_URL": settings.database_url,
        "RAGSTORE_MIGRATE_ON_START": "false",
        "RAGSTORE_WORKER_IN_PROCESS": "false",
        "RAGSTORE_LOG_LEVEL": "WARNING",
    }
    async with serving(command, **{**defaults, **environment}) as url:
        yield url


@asynccontextmanager
async def serving(command: list[str], **environment: str) -> AsyncIterator[ServerURL]:
    """`command --port N` in its own process; yields its base URL once /api/health is 200."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *command,
        "--port",
        str(port),
        env={**os.environ, **environment},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = server.pid
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{url}/api/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError(f"{command[-1]} did not become healthy in 60 s")
        yield url
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        console.print("matplotlib not installed (pip install -e '.[bench]'): no chart")
        return None
    return plt


def _save(plt: Any, figure: Any, axis: Any, name: str, title: str, axes: tuple[str, str]) -> Path:
    axis.set_title(title, fontsize=10)
    axis.set_xlabel(axes[0])
    axis.set_ylabel(axes[1])
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def chart(
    name: str,
    title: str,
    axes: tuple[str, str],
    series: dict[str, tuple[list[float], list[float]]],
    log_y: bool = False,
) -> Path | None:
    """A PNG line chart in the results folder (skipped without the bench extra)."""
    if (plt := _pyplot()) is None:
        return None
    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, (xs, ys) in series.items():
        axis.plot(xs, ys, marker="o", label=label)
    if log_y:
        axis.set_yscale("log")
    return _save(plt, figure, axis, name, title, axes)


def bar_chart(
    name: str, title: str, axes: tuple[str, str], groups: list[str], bars: dict[str, list[float]]
) -> Path | None:
    """A PNG grouped bar chart: one group per entry of `groups`, one bar per series."""
    if (plt := _pyplot()) is None:
        return None
    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    width = 0.8 / len(bars)
    for number, (label, values) in enumerate(bars.items()):
        positions = [group + number * width for group in range(len(groups))]
        drawn = axis.bar(positions, values, width, label=label)
        axis.bar_label(drawn, fmt="%.3f", fontsize=7)
    axis.set_xticks([group + width * (len(bars) - 1) / 2 for group in range(len(groups))], groups)
    return _save(plt, figure, axis, name, title, axes)


def report(
    name: str, title: str, columns: list[str], rows: list[list[Any]], inputs: dict[str, Any]
) -> None:
    """Print the table and save it with the inputs and the machine."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "inputs": inputs,
        "machine": machine(),
        "columns": columns,
        "rows": rows,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)
