"""Benchmark 5: the server's peak memory while it ingests a 20 MB CSV, a 200 MB CSV and a PDF.

`ragstore serve` runs in its own process; each file is uploaded through
`POST /api/upload-document` and ingested end to end (parse, chunk, embed
through the fake OpenAI server, COPY into PostgreSQL). Before each upload the
kernel's peak-RSS counter of the server is reset (`/proc/PID/clear_refs`), so
`VmHWM` afterwards is that upload's peak. Flat memory means the 200 MB CSV
peaks close to the 20 MB one: parsing reads row batches, chunks are taken,
embedded and written a slice at a time, and the upload is spooled to disk.

    python -m bench.memory [--small-mb 20] [--large-mb 200]
"""

import argparse
import asyncio
import csv
import random
import shutil
import tempfile
from pathlib import Path

import httpx

from bench.common import database, report, served, timer
from bench.corpus import GEOTOPO_PDF, paragraphs
from bench.upstream import fake_upstream

CITIES = ["Lisbon", "Oslo", "Quito", "Hanoi", "Nairobi", "Perth", "Lima", "Riga"]


def write_csv(path: Path, megabytes: float) -> Path:
    """An orders table with a free-text column, `megabytes` large."""
    rng = random.Random(5)
    notes = paragraphs(500)
    target = int(megabytes * 1024 * 1024)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "city", "amount", "placed_on", "note"])
        row = 0
        while handle.tell() < target:
            for _ in range(100):
                writer.writerow(
                    [
                        row,
                        rng.choice(CITIES),
                        f"{rng.uniform(1, 5000):.2f}",
                        f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                        notes[row % len(notes)][: rng.randint(40, 200)],
                    ]
                )
                row += 1
    return path


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak(pid: int) -> None:
    # Writing 5 resets the peak resident set size (Linux >= 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def upload(client: httpx.AsyncClient, base_url: str, path: Path, session: str) -> int:
    with path.open("rb") as handle:
        response = await client.post(
            f"{base_url}/api/upload-document",
            data={"session_id": session},
            files={"file": (path.name, handle)},
        )
    response.raise_for_status()
    chunks: int = response.json()["chunk_count"]
    return chunks


async def run(files: list[tuple[str, Path]], small_mb: float, large_mb: float) -> None:
    rows = []
    with fake_upstream(0.0) as upstream:
        overrides = {
            "embedding_provider": "openai",
            "embedding_model": "text-embedding-3-small",
            "embedding_dimensions": 384,
        }
        with database(**overrides) as (_, settings):
            environment = {
                "RAGSTORE_EMBEDDING_PROVIDER": "openai",
                "RAGSTORE_EMBEDDING_MODEL": "text-embedding-3-small",
                "RAGSTORE_EMBEDDING_DIMENSIONS": "384",
                "RAGSTORE_MAX_UPLOAD_MB": str(large_mb * 1.2 + 5),
                "OPENAI_BASE_URL": upstream.url,
                "OPENAI_API_KEY": "bench",
            }
            async with (
                served(settings, **environment) as base_url,
                httpx.AsyncClient(timeout=None) as client,
            ):
                idle = rss_kib(base_url.pid, "VmRSS")
                for index, (label, path) in enumerate(files):
                    reset_peak(base_url.pid)
                    before = rss_kib(base_url.pid, "VmRSS")
                    with timer() as seconds:
                        chunks = await upload(client, base_url, path, f"memory-{index}")
                    peak = rss_kib(base_url.pid, "VmHWM")
                    rows.append(
                        [
                            label,
                            path.stat().st_size / 1024 / 1024,
                            chunks,
                            seconds[0],
                            before / 1024,
                            peak / 1024,
                        ]
                    )
    ratio = rows[1][5] / rows[0][5]
    report(
        "memory",
        f"Peak RSS of the server per upload: the {large_mb:g} MB CSV peaks at {ratio:.2f}x "
        f"the {small_mb:g} MB one",
        ["file", "MB", "chunks", "seconds", "RSS before (MB)", "peak RSS (MB)"],
        rows,
        {"idle_rss_mb": idle / 1024, "small_mb": small_mb, "large_mb": large_mb},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small-mb", type=float, default=20)
    parser.add_argument("--large-mb", type=float, default=200)
    parser.add_argument("--pdf", type=Path, default=GEOTOPO_PDF)
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ragstore-memory-"))
    small, large = arguments.small_mb, arguments.large_mb
    files = [
        (f"{small:g} MB CSV", write_csv(workdir / "small.csv", small)),
        (f"{large:g} MB CSV", write_csv(workdir / "large.csv", large)),
    ]
    if arguments.pdf.exists():
        files.append((f"{arguments.pdf.name} (117 pages)", arguments.pdf))
    try:
        asyncio.run(run(files, small, large))
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
