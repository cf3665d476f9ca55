"""`ragstore ingest`: files and folders into a collection, with progress and a summary."""

import asyncio
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from app.cli.output import JsonOption, emit_json, emit_rows
from app.cli.runtime import console, errors, run
from app.core.errors import AppError
from app.ingestion.prepared import ProcessingOptions
from app.ingestion.progress import IngestProgress
from app.ingestion.upload import describe_file
from app.runtime import Runtime


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed columns speak of bytes)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:6.1f}/s" if task.speed else "", style="progress.data.speed")


RESULTS = ("ingested", "skipped", "failed")


@dataclass(frozen=True)
class FileOutcome:
    path: Path
    result: str
    chunks: int = 0
    detail: str = ""


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to ingest.")],
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="Collection to add to (created if new).")
    ],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Enter subfolders.")] = False,
    chunk_size: Annotated[
        int | None, typer.Option(help="Characters per chunk (default RAGSTORE_CHUNK_SIZE).")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(help="Characters of overlap (default RAGSTORE_CHUNK_OVERLAP).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Parse, chunk, embed and store files. Unchanged files are skipped; exits 1 if any failed.
    Progress goes to stderr; the summary to stdout."""
    files = find_files(paths, recursive)
    outcomes = run(lambda runtime: _ingest_all(runtime, files, collection, chunk_size, overlap))
    counts = {name: sum(1 for o in outcomes if o.result == name) for name in RESULTS}
    totals = ", ".join(f"{count} {name}" for name, count in counts.items())
    if as_json:
        emit_json({"files": [asdict(o) for o in outcomes], **counts})
    else:
        rows = [(o.path, o.result, o.chunks, o.detail) for o in outcomes]
        emit_rows("ingest summary", ("file", "result", "chunks", "detail"), rows, caption=totals)
        if not console.is_terminal:
            errors.print(totals, highlight=False)
    raise typer.Exit(code=1 if counts["failed"] else 0)


def find_files(paths: list[Path], recursive: bool) -> list[Path]:
    """The files named, and those in the folders named (hidden ones left out), in order."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(
                sorted(
                    p
                    for p in path.glob(pattern)
                    if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            raise typer.BadParameter(f"no such file or folder: {path}")
    return found


async def _ingest_all(
    runtime: Runtime,
    files: list[Path],
    collection: str,
    chunk_size: int | None,
    overlap: int | None,
) -> list[FileOutcome]:
    options = ProcessingOptions.from_request(runtime.settings, chunk_size, overlap)
    outcomes = []
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # On stderr: stdout carries only the summary, for pipes and `--json`.
    with Progress(*columns, console=errors, transient=False) as bar:
        files_task = bar.add_task("files", total=len(files))
        bars = _ChunkBars(
            bar, bar.add_task("chunks", total=None), bar.add_task("embeddings", total=None)
        )
        for path in files:
            outcomes.append(await _ingest_one(runtime, path, collection, options, bars))
            bar.advance(files_task)
        bar.update(bars.chunks_task, total=bars.done.chunks_made)
    return outcomes


@dataclass
class _ChunkBars:
    """The chunk and embedding bars: the files done so far plus the one in progress."""

    bar: Progress
    chunks_task: TaskID
    embedded_task: TaskID
    done: IngestProgress = field(default_factory=IngestProgress)

    def show(self, progress: IngestProgress) -> None:
        made = self.done.chunks_made + progress.chunks_made
        self.bar.update(self.chunks_task, completed=made)
        self.bar.update(
            self.embedded_task,
            completed=self.done.chunks_embedded + progress.chunks_embedded,
            total=made,
        )

    def file_done(self, chunks: int, embedded: int) -> None:
        self.done.chunks_made += chunks
        self.done.chunks_embedded += embedded
        self.show(IngestProgress())


async def _ingest_one(
    runtime: Runtime, path: Path, collection: str, options: ProcessingOptions, bars: _ChunkBars
) -> FileOutcome:
    try:
        stored = await asyncio.to_thread(describe_file, path)
        result = await runtime.ingestion.ingest(
            stored, collection, options, create_collection=True, on_progress=bars.show
        )
    except AppError as exc:
        return FileOutcome(path, "failed", detail=exc.message)
    count = result.document.chunk_count
    if result.already_processed:
        return FileOutcome(path, "skipped", count, "unchanged")
    bars.file_done(count, 0 if result.from_cache else count)
    return FileOutcome(path, "ingested", count, "from cache" if result.from_cache else "")
