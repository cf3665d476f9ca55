"""Benchmark 5: the server's peak memory and its rate while it ingests a 20 MB CSV, a
200 MB CSV and a PDF.

`ragstore serve` runs in its own process; each file is uploaded through
`POST /api/upload-document` and ingested end to end (parse, chunk, embed
through the fake OpenAI server, COPY into PostgreSQL). Before each upload the
kernel's peak-RSS counter of the server is reset (`/proc/PID/clear_refs`), so
`VmHWM` afterwards is that upload's peak. Flat memory means the 200 MB CSV
peaks close to the 20 MB one: parsing reads row batches, chunks are taken,
embedded and written a slice at a time, and the upload is spooled to disk.
A steady rate means the 200 MB CSV's chunks/s stays close to the 20 MB one's.

The upstream answers with dense vectors (sums of fixed random word vectors)
at each dimension asked, each into a new collection of its own.

    python -m bench.memory [--small-mb 20] [--large-mb 200] [--dimensions 1536,384]
        [--latency 0] [--build-memory-mb 512]
"""

import argparse
import asyncio
import csv
import random
import shutil
import tempfile
from pathlib import Path

import httpx

from bench.common import database, dimension_list, report, served, timer
from bench.corpus import GEOTOPO_PDF, paragraphs
from bench.upstream import UPSTREAM_EMBEDDINGS, fake_upstream, upstream_environment

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
    if response.is_error:
        raise RuntimeError(f"{path.name}: {response.status_code} {response.text}")
    chunks: int = response.json()["chunk_count"]
    return chunks


async def measure(
    files: list[tuple[str, Path]],
    large_mb: float,
    dimensions: int,
    latency: float,
    build_memory_mb: int,
) -> list[list[object]]:
    rows: list[list[object]] = []
    overrides = {**UPSTREAM_EMBEDDINGS, "embedding_dimensions": dimensions}
    with fake_upstream(latency, dense=True) as upstream, database(**overrides) as (_, settings):
        environment = upstream_environment(
            upstream.url,
            RAGSTORE_EMBEDDING_DIMENSIONS=str(dimensions),
            RAGSTORE_MAX_UPLOAD_MB=str(large_mb * 1.2 + 5),
            RAGSTORE_INDEX_BUILD_MEMORY_MB=str(build_memory_mb),
            # The 200 MB CSV makes about 756,000 chunks, over the default limit of 250,000.
            RAGSTORE_MAX_CHUNKS_PER_DOCUMENT="2000000",
        )
        async with (
            served(settings, **environment) as base_url,
            httpx.AsyncClient(timeout=None) as client,
        ):
            idle = rss_kib(base_url.pid, "VmRSS")
            for index, (label, path) in enumerate(files):
                megabytes = path.stat().st_size / 1024 / 1024
                reset_peak(base_url.pid)
                before = rss_kib(base_url.pid, "VmRSS")
                with timer() as seconds:
                    chunks = await upload(client, base_url, path, f"memory-{index}")
                peak = rss_kib(base_url.pid, "VmHWM")
                rows.append(
                    [
                        f"{dimensions:,}",
                        label,
                        megabytes,
                        chunks,
                        seconds[0],
                        chunks / seconds[0],
                        before / 1024,
                        peak / 1024,
                    ]
                )
    print(f"{dimensions}-d: idle RSS {idle / 1024:.0f} MB", flush=True)
    return rows


async def run(
    files: list[tuple[str, Path]],
    small_mb: float,
    large_mb: float,
    dimensions: list[int],
    latency: float,
    build_memory_mb: int,
) -> None:
    rows = []
    ratios = []
    for size in dimensions:
        measured = await measure(files, large_mb, size, latency, build_memory_mb)
        # The large CSV against the small one (the first two files): memory, then rate.
        ratios.append(
            f"{size:,}-d: {measured[1][7] / measured[0][7]:.2f}x the memory, "
            f"{measured[1][5] / measured[0][5]:.2f}x the chunks/s"
        )
        rows += measured
    report(
        "memory",
        f"Peak RSS and rate of the server per upload, the {large_mb:g} MB CSV against the "
        f"{small_mb:g} MB one: " + "; ".join(ratios),
        [
            "dimensions",
            "file",
            "MB",
            "chunks",
            "seconds",
            "chunks/s",
            "RSS before (MB)",
            "peak RSS (MB)",
        ],
        rows,
        {
            "small_mb": small_mb,
            "large_mb": large_mb,
            "latency_seconds": latency,
            "index_build_memory_mb": build_memory_mb,
            "vectors": "dense, sums of word vectors",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small-mb", type=float, default=20)
    parser.add_argument("--large-mb", type=float, default=200)
    parser.add_argument("--pdf", type=Path, default=GEOTOPO_PDF)
    parser.add_argument("--dimensions", type=dimension_list, default=[1536, 384])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per embedding call")
    parser.add_argument(
        "--build-memory-mb",
        type=int,
        default=512,
        help="RAGSTORE_INDEX_BUILD_MEMORY_MB of the server (a larger graph is built slower)",
    )
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
        sizes = arguments.dimensions
        asyncio.run(run(files, small, large, sizes, arguments.latency, arguments.build_memory_mb))
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
