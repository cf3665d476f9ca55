"""Uploaded files: size-limited, hashed and kept on disk while they are ingested; their
metadata field parsed. Plain values in and out: the form itself is read at the web edge."""

import asyncio
import contextlib
import hashlib
import json
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO

from app.core.errors import PayloadTooLarge, UnprocessableContent
from app.core.middleware import upload_too_large
from app.db.types import METADATA_TOO_DEEP, check_metadata
from app.document.metadata import metadata_too_large

_COPY_BLOCK = 1024 * 1024
# The temporary copies of uploads (here) and of stored files a job processes (jobs/).
UPLOAD_PREFIX = "ragstore-upload-"
JOB_FILE_PREFIX = "ragstore-job-"
# Older copies are left by a process that was killed: no live upload or job takes a day.
STALE_AFTER = timedelta(days=1)
MAX_FILENAME_LENGTH = 255


@dataclass(frozen=True)
class UploadRequest:
    """An upload as a route received it: bytes still to be read, and the form's fields."""

    source: BinaryIO
    filename: str | None
    api_key: str | None = None
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    filename: str
    size_bytes: int
    sha256: str
    # The stored file (Files API) these bytes are a copy of, if any: its documents say so.
    file_id: str | None = None


def clean_filename(raw: str | None) -> str:
    """The file's own name, without directories, control characters or excess length.

    A NUL is refused rather than dropped: `report.pdf<NUL>.txt` is a classic way to make
    two programs disagree about a file's type.
    """
    if raw and "\x00" in raw:
        raise UnprocessableContent("the file name must not contain NUL characters")
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if not name or name in (".", ".."):
        raise UnprocessableContent("the upload has no file name")
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        keep = MAX_FILENAME_LENGTH - len(extension) - 1
        name = (
            f"{stem[:keep]}.{extension}"
            if dot and len(extension) < 16
            else name[:MAX_FILENAME_LENGTH]
        )
    return name


def store_upload(
    source: BinaryIO, filename: str, max_bytes: int, directory: Path | None = None
) -> StoredUpload:
    """Copy an upload to a named temporary file, hashing it on the way.

    Blocking: call it in a worker thread. The caller deletes the file.
    """
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(prefix=UPLOAD_PREFIX, dir=directory, delete=False) as handle:
        path = Path(handle.name)
        try:
            while block := source.read(_COPY_BLOCK):
                size += len(block)
                if size > max_bytes:
                    raise PayloadTooLarge(upload_too_large(max_bytes))
                digest.update(block)
                handle.write(block)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return StoredUpload(path=path, filename=filename, size_bytes=size, sha256=digest.hexdigest())


def remove_stale_copies(max_age: timedelta = STALE_AFTER) -> int:
    """Delete the temporary upload and job copies a killed process left behind.

    Blocking: call it in a worker thread. Only copies older than any live upload or job
    runs are removed, since other ragstore processes may share the directory.
    """
    folder = Path(tempfile.gettempdir())
    cutoff = time.time() - max_age.total_seconds()
    removed = 0
    for prefix in (UPLOAD_PREFIX, JOB_FILE_PREFIX):
        for path in folder.glob(f"{prefix}*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
    return removed


def describe_file(path: Path) -> StoredUpload:
    """A local file as an upload (for the CLI and the Python API): hashed, not copied."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_COPY_BLOCK):
            digest.update(block)
    return StoredUpload(path, path.name, path.stat().st_size, digest.hexdigest())


@asynccontextmanager
async def received_upload(upload: UploadRequest, max_bytes: int) -> AsyncIterator[StoredUpload]:
    """The upload's bytes on disk under its cleaned name, removed when the block ends."""
    filename = clean_filename(upload.filename)
    stored = await asyncio.to_thread(store_upload, upload.source, filename, max_bytes)
    try:
        yield stored
    finally:
        stored.path.unlink(missing_ok=True)


def parse_metadata(raw: str | None, max_bytes: int) -> dict[str, Any]:
    """The `metadata` form field: a JSON object, or nothing."""
    if raw is None or not raw.strip():
        return {}
    # Measured before parsing: the parser's time and memory grow with the input.
    if len(raw) > max_bytes:
        raise UnprocessableContent(metadata_too_large(max_bytes))
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UnprocessableContent(f"metadata is not valid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise UnprocessableContent(METADATA_TOO_DEEP) from exc
    except ValueError as exc:
        # Python refuses to read integers of more than 4,300 digits (a denial-of-service
        # guard of its int parser), with a plain ValueError.
        raise UnprocessableContent(f"metadata holds a number too long to read: {exc}") from exc
    if not isinstance(value, dict):
        raise UnprocessableContent("metadata must be a JSON object")
    check_metadata(value)
    return value


async def copy_to_temporary(parts: AsyncIterator[bytes]) -> Path:
    """Stored bytes (as rows from the database) in a temporary file, for the parsers; the
    caller deletes it."""
    handle = tempfile.NamedTemporaryFile(prefix=JOB_FILE_PREFIX, delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        async for block in parts:
            await asyncio.to_thread(handle.write, block)
    except BaseException:
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    await asyncio.to_thread(handle.close)
    return path
