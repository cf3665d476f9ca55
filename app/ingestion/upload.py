"""Uploaded files: size-limited while they stream in, hashed, and kept on disk."""

import asyncio
import hashlib
import json
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, BinaryIO

from fastapi import Depends, File, Form, HTTPException, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import UNREADABLE_BODY, PayloadTooLarge, UnprocessableContent, error_responses
from app.db.types import METADATA_TOO_DEEP, check_metadata
from app.llm.client import RequestApiKey

_COPY_BLOCK = 1024 * 1024
MAX_FILENAME_LENGTH = 255
# Multipart framing and the form's other fields come on top of the file.
_MULTIPART_ALLOWANCE = 1024 * 1024


# The failures both upload routes share, for their OpenAPI description.
UPLOAD_ERRORS = error_responses(
    {
        400: f"{UNREADABLE_BODY}; or `api_key` with an asynchronous upload",
        401: "No API key, or the provider rejected it",
        413: "The file is over the upload limit",
        415: "The file type is not supported",
        422: "The request does not match the schema, or the file is encrypted, damaged, "
        "empty or has no text, or its name or metadata is refused",
        502: "Embedding failed after retries; the document is marked failed",
    }
)


@dataclass(frozen=True)
class UploadForm:
    """The multipart form of both upload routes."""

    file: UploadFile
    api_key: str | None
    chunk_size: int | None
    chunk_overlap: int | None
    metadata: str | None


def upload_form(
    file: Annotated[UploadFile, File(description="PDF, DOCX, XLSX, CSV, TXT, Markdown or HTML")],
    api_key: Annotated[
        RequestApiKey | None,
        Form(description="OpenAI key for this upload's embeddings; never stored"),
    ] = None,
    chunk_size: Annotated[
        int | None, Form(description="Characters per chunk (default 500)")
    ] = None,
    chunk_overlap: Annotated[
        int | None, Form(description="Characters of overlap (default 50)")
    ] = None,
    metadata: Annotated[
        str | None, Form(description="A JSON object stored with the document and its chunks")
    ] = None,
) -> UploadForm:
    return UploadForm(file, api_key, chunk_size, chunk_overlap, metadata)


UploadFormDep = Annotated[UploadForm, Depends(upload_form)]


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    filename: str
    size_bytes: int
    sha256: str


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
    with tempfile.NamedTemporaryFile(
        prefix="ragstore-upload-", dir=directory, delete=False
    ) as handle:
        path = Path(handle.name)
        try:
            while block := source.read(_COPY_BLOCK):
                size += len(block)
                if size > max_bytes:
                    raise PayloadTooLarge(_too_large(max_bytes))
                digest.update(block)
                handle.write(block)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return StoredUpload(path=path, filename=filename, size_bytes=size, sha256=digest.hexdigest())


def _too_large(max_bytes: int) -> str:
    return f"the file is larger than the {max_bytes / 1024 / 1024:.3g} MB upload limit"


class UploadSizeLimit:
    """Refuses request bodies over the upload limit while they stream in.

    A declared Content-Length over the limit is refused before a byte is read;
    a chunked body is cut off as soon as it passes the limit, so an oversized
    upload never fills the disk.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_bytes + _MULTIPART_ALLOWANCE
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_too_large(send, _too_large(self.max_bytes))
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised inside body parsing; FastAPI passes HTTPExceptions through.
                    raise HTTPException(status_code=413, detail=_too_large(self.max_bytes))
            return message

        await self.app(scope, limited_receive, send)


async def _send_too_large(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def describe_file(path: Path) -> StoredUpload:
    """A local file as an upload (for the CLI and the Python API): hashed, not copied."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_COPY_BLOCK):
            digest.update(block)
    return StoredUpload(path, path.name, path.stat().st_size, digest.hexdigest())


@asynccontextmanager
async def received_upload(file: UploadFile, max_bytes: int) -> AsyncIterator[StoredUpload]:
    """The multipart file on disk under its cleaned name, removed when the block ends."""
    filename = clean_filename(file.filename)
    stored = await asyncio.to_thread(store_upload, file.file, filename, max_bytes)
    try:
        yield stored
    finally:
        stored.path.unlink(missing_ok=True)


def metadata_too_large(max_bytes: int) -> str:
    return f"metadata is larger than {max_bytes / 1024:g} KB of JSON"


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
    if not isinstance(value, dict):
        raise UnprocessableContent("metadata must be a JSON object")
    check_metadata(value)
    return value
