"""Hostile and broken uploads: each is a clear 4xx, nothing is stored, the server keeps serving.

The corpus is generated here, not checked in: damaged PDFs, a PDF of many
thousands of empty pages, a DOCX ZIP bomb, CSVs of binary garbage or a million
columns, wrong extensions, broken encodings, bad file names and form fields.
Every case goes through both upload routes, the original one and the
resource API's.
"""

import asyncio
import os
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI
from tests.support.files import PNG_HEADER, write_docx, write_pdf, write_zip_bomb
from tests.support.servers import serve_app
from tests.support.uploads import PROSE, long_text, upload

ORIGINAL_ROUTE = "/api/upload-document"
RESOURCE_ROUTE = "/api/collections/target/documents"
STORED_ROWS = ("documents", "chunks", "document_files", "ingestion_jobs", "processed_documents")


def empty_pages_pdf(pages: int) -> bytes:
    """A valid PDF of `pages` blank pages, written by hand (fpdf2 takes seconds for thousands)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % n for n in range(3, pages + 3)), pages),
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@dataclass(frozen=True)
class Case:
    content: Callable[[Path], bytes]
    filename: str
    status: int
    detail: str
    form: tuple[tuple[str, str], ...] = ()


def _pdf(tmp: Path) -> bytes:
    return write_pdf(tmp / "ok.pdf", [PROSE, PROSE]).read_bytes()


def _zip(tmp: Path, members: dict[str, bytes]) -> bytes:
    path = tmp / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path.read_bytes()


def _docx_bomb(tmp: Path) -> bytes:
    # 300 MB of XML that deflates to about 300 KB.
    path = write_zip_bomb(tmp / "bomb.docx", "word/document.xml", 300 * 1024 * 1024)
    return path.read_bytes()


def _text_then_garbage(_tmp: Path) -> bytes:
    # Past the 64 KB that encoding detection samples, so the parser meets the bad bytes.
    return long_text(200).encode() + b"\n\xff\xfe\xfa broken \xc3\x28 bytes\n"


def _csv_then_garbage(_tmp: Path) -> bytes:
    rows = "".join(f"{n},row number {n}\n" for n in range(8000))
    return b"id,text\n" + rows.encode() + os.urandom(4096).replace(b"\x00", b"\x01")


CASES: dict[str, Case] = {
    "truncated pdf": Case(lambda t: _pdf(t)[: len(_pdf(t)) // 2], "a.pdf", 422, "damaged"),
    "pdf header then garbage": Case(
        lambda _t: b"%PDF-1.7\n" + os.urandom(20_000), "a.pdf", 422, "the PDF could not be read"
    ),
    "pdf of blank pages only": Case(
        lambda _t: empty_pages_pdf(2000), "blank.pdf", 422, "no extractable text"
    ),
    "pdf of too many pages": Case(
        lambda _t: empty_pages_pdf(20_000), "huge.pdf", 422, "20000 pages; at most 5000"
    ),
    "docx zip bomb": Case(_docx_bomb, "bomb.docx", 422, "possible ZIP bomb"),
    "docx with broken zip": Case(
        lambda t: write_docx(t / "a.docx", [PROSE]).read_bytes()[:-200],
        "a.docx",
        422,
        "damaged ZIP archive",
    ),
    "csv of binary garbage": Case(
        lambda _t: os.urandom(64 * 1024), "data.csv", 415, "unsupported file type"
    ),
    "csv turning into garbage": Case(
        _csv_then_garbage, "data.csv", 422, "is not valid utf-8 text throughout"
    ),
    "csv of a million columns": Case(
        lambda _t: (b"c," * 1_000_000) + b"\n" + (b"1," * 1_000_000) + b"\n",
        "wide.csv",
        422,
        "1000001 columns; at most 10000",
    ),
    "png named .pdf": Case(
        lambda _t: PNG_HEADER + bytes(500), "photo.pdf", 415, "Portable Network Graphics"
    ),
    "plain zip named .docx": Case(
        lambda t: _zip(t, {"readme.txt": b"hello"}), "letter.docx", 415, "ZIP archive"
    ),
    "elf binary named .txt": Case(
        lambda _t: b"\x7fELF\x02\x01\x01" + bytes(1000), "notes.txt", 415, "unsupported"
    ),
    "utf-16 without a byte-order mark": Case(
        lambda _t: PROSE.encode("utf-16-le"), "notes.txt", 415, "unsupported file type"
    ),
    "text turning into garbage": Case(
        _text_then_garbage, "notes.txt", 422, "is not valid utf-8 text throughout"
    ),
    "empty file": Case(lambda _t: b"", "empty.txt", 422, "the file is empty"),
    "whitespace only": Case(lambda _t: b" \n\t\r\n" * 1000, "blank.txt", 422, "the file is empty"),
    "file name of dots": Case(lambda _t: PROSE.encode(), "..", 422, "no file name"),
    "metadata over 16 KB": Case(
        lambda _t: PROSE.encode(),
        "a.txt",
        422,
        "metadata is larger than 16 KB",
        (("metadata", '{"a": "' + "x" * 20_000 + '"}'),),
    ),
    # Starlette's form parser refuses a text field over 1 MB before any of our code runs.
    "metadata of 5 MB": Case(
        lambda _t: PROSE.encode(),
        "a.txt",
        400,
        "Part exceeded maximum size of 1024KB",
        (("metadata", '{"a": "' + "x" * 5_000_000 + '"}'),),
    ),
    "deeply nested metadata": Case(
        lambda _t: PROSE.encode(),
        "a.txt",
        422,
        "metadata is nested more than 32 levels deep",
        (("metadata", '{"a": ' + "[" * 5000 + "]" * 5000 + "}"),),
    ),
    "negative chunk size": Case(
        lambda _t: PROSE.encode(), "a.txt", 422, "chunk_size", (("chunk_size", "-5"),)
    ),
    "negative chunk overlap": Case(
        lambda _t: PROSE.encode(), "a.txt", 422, "chunk_overlap", (("chunk_overlap", "-1"),)
    ),
    "absurd chunk size": Case(
        lambda _t: PROSE.encode(),
        "a.txt",
        422,
        "must be at most 24000 characters",
        (("chunk_size", "10" * 20),),
    ),
    "chunk size not a number": Case(
        lambda _t: PROSE.encode(), "a.txt", 422, "chunk_size", (("chunk_size", "lots"),)
    ),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("hostile")
    return {name: case.content(directory) for name, case in CASES.items()}


async def assert_nothing_stored(db: AsyncConnection) -> None:
    for table in STORED_ROWS:
        assert await scalar(db, f"SELECT count(*) FROM {table}") == 0, table


@pytest.mark.parametrize("name", CASES)
async def test_hostile_upload_is_a_clear_4xx_and_leaves_nothing(
    client: httpx.AsyncClient,
    db: AsyncConnection,
    upstream: FakeOpenAI,
    corpus: dict[str, bytes],
    name: str,
) -> None:
    case = CASES[name]
    await client.post("/api/collections", json={"name": "target", "id": "target"})

    for route in (ORIGINAL_ROUTE, RESOURCE_ROUTE):
        response = await upload(
            client, corpus[name], case.filename, route=route, session_id="s", **dict(case.form)
        )

        assert response.status_code == case.status, (route, response.text[:500])
        assert case.detail in response.json()["detail"], route
    assert (await client.get("/api/health")).status_code == 200
    await assert_nothing_stored(db)
    assert await scalar(db, "SELECT count(*) FROM collections") == 1, "only the one made here"
    assert not [r for r in upstream.requests if r.path == "embeddings"]


def multipart(filename: bytes, content: bytes) -> tuple[bytes, str]:
    """A multipart body with the file name's bytes as given: httpx would percent-escape a NUL."""
    boundary = "hostileboundary7d9"
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def test_a_file_name_with_a_nul_byte_is_refused(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await client.post("/api/collections", json={"name": "target", "id": "target"})
    body, content_type = multipart(b"report.pdf\x00.txt", PROSE.encode())

    for route in (ORIGINAL_ROUTE, RESOURCE_ROUTE):
        response = await client.post(route, content=body, headers={"content-type": content_type})

        assert response.status_code == 422, response.text
        assert response.json() == {"detail": "the file name must not contain NUL characters"}
    await assert_nothing_stored(db)


@pytest.mark.parametrize(
    ("raw_name", "stored_name"),
    [
        (b"../../etc/passwd.txt", "passwd.txt"),
        (b"C:\\Users\\me\\win.ini.txt", "win.ini.txt"),
        (b"/abs/path/notes.md", "notes.md"),
        (b"tab\tand\x01control\x7f.txt", "tabandcontrol.txt"),
        (b"x" * 1000 + b".txt", "x" * 251 + ".txt"),
        ("ü".encode() * 1000, "ü" * 255),
    ],
)
async def test_file_names_are_stored_as_a_safe_base_name(
    client: httpx.AsyncClient, raw_name: bytes, stored_name: str
) -> None:
    await client.post("/api/collections", json={"name": "target", "id": "target"})
    body, content_type = multipart(raw_name, long_text(2).encode())
    headers = {"content-type": content_type}

    original = await client.post(ORIGINAL_ROUTE, content=body, headers=headers)
    resource = await client.post(RESOURCE_ROUTE, content=body, headers=headers)

    assert original.status_code == 200, original.text
    assert original.json()["filename"] == stored_name
    assert resource.status_code == 201, resource.text
    assert resource.json()["filename"] == stored_name


async def test_a_file_name_of_10k_characters_is_refused_by_the_form_parser(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    # python-multipart limits a part's header line to about 4 KB.
    body, content_type = multipart(b"x" * 10_000 + b".txt", PROSE.encode())

    response = await client.post(
        ORIGINAL_ROUTE, content=body, headers={"content-type": content_type}
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid multipart data."}
    await assert_nothing_stored(db)


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [
        (_pdf, "report.docx", "application/pdf"),
        (lambda t: write_docx(t / "a.docx", [PROSE]).read_bytes(), "letter.pdf", "wordprocessing"),
        (lambda _t: PROSE.encode("latin-1") + "café".encode("latin-1"), "a.txt", "text/plain"),
    ],
)
async def test_a_wrong_extension_or_legacy_encoding_is_read_by_its_bytes(
    client: httpx.AsyncClient,
    tmp_path: Path,
    content: Callable[[Path], bytes],
    filename: str,
    content_type: str,
) -> None:
    await client.post("/api/collections", json={"name": "target", "id": "target"})

    response = await upload(client, content(tmp_path), filename, route=RESOURCE_ROUTE)

    assert response.status_code == 201, response.text
    assert content_type in response.json()["content_type"]
    assert response.json()["chunk_count"] > 0


# --- over the size limit ------------------------------------------------------------------------


def peak_rss_while(action: Callable[[], object]) -> tuple[object, int]:
    """Run `action` and return its result and this process's highest RSS growth meanwhile."""

    def rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    baseline, peak, done = rss(), 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.01):
            peak = max(peak, rss() - baseline)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return result, peak


def send_chunked_upload(port: int, path: str, total_bytes: int) -> tuple[bytes, int]:
    """Stream a multipart upload with no Content-Length, the way a proxy or `curl -T -` does,
    watching for the server's answer between blocks. Returns (answer head, bytes sent)."""
    import socket

    block = b"x" * (256 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: multipart/form-data; boundary=b0undary\r\n\r\n".encode()
        )
        opening = (
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.txt"'
            b"\r\nContent-Type: text/plain\r\n\r\n"
        )
        connection.sendall(b"%x\r\n%s\r\n" % (len(opening), opening))
        sent = 0
        connection.setblocking(False)
        while sent < total_bytes:
            try:
                if connection.recv(1, socket.MSG_PEEK):
                    break
            except BlockingIOError:
                pass
            try:
                connection.setblocking(True)
                connection.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                connection.setblocking(False)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(block)
        connection.setblocking(True)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            piece = connection.recv(65536)
            if not piece:
                break
            answer += piece
    return answer, sent


@pytest.mark.parametrize("route", [ORIGINAL_ROUTE, RESOURCE_ROUTE])
async def test_a_streamed_upload_over_the_limit_is_cut_off_with_413_and_memory_stays_flat(
    settings: Settings, db: AsyncConnection, route: str
) -> None:
    one_mb = settings.model_copy(update={"max_upload_mb": 1.0})
    async with serve_app(one_mb) as client:
        await client.post("/api/collections", json={"name": "target", "id": "target"})
        port = client.base_url.port
        assert port is not None
        (answer, sent), growth = await asyncio.to_thread(
            peak_rss_while, lambda: send_chunked_upload(port, route, 512 * 1024 * 1024)
        )
        health = await client.get("/api/health")

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"detail":"the file is larger than the 1 MB upload limit"' in body
    assert sent < 64 * 1024 * 1024, "the server answered long before the 512 MB were sent"
    assert growth < 64 * 1024 * 1024, f"the server's memory grew by {growth / 2**20:.0f} MB"
    assert health.status_code == 200
    await assert_nothing_stored(db)
