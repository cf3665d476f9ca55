"""Building uploads the way the original front end sends them."""

from pathlib import Path
from typing import Any

import httpx

from app.processing.chunking import TextSplitter, chunk_units
from app.processing.parsers import parse_document
from app.processing.units import DocumentType

PROSE = (
    "Pgvector adds vector similarity search to PostgreSQL. "
    "It supports exact and approximate nearest neighbour search.\n\n"
    "HNSW indexes build a multilayer graph. They have better query performance "
    "than IVFFlat but slower build times and use more memory.\n\n"
    "Reciprocal rank fusion combines the rankings of keyword and vector search. "
    "Each result scores one over sixty plus its rank in each list.\n\n"
)


def long_text(paragraphs: int = 12) -> str:
    """Prose long enough for several 500-character chunks, each paragraph distinct."""
    return "".join(f"Part {n}. {PROSE}" for n in range(paragraphs))


async def upload(
    client: httpx.AsyncClient,
    content: bytes | str,
    filename: str = "notes.txt",
    route: str = "/api/upload-document",
    **form: Any,
) -> httpx.Response:
    data = content.encode() if isinstance(content, str) else content
    fields = {key: str(value) for key, value in form.items() if value is not None}
    return await client.post(route, files={"file": (filename, data)}, data=fields)


async def stored_in(
    client: httpx.AsyncClient, collection: str, content: str, filename: str = "a.txt"
) -> dict[str, Any]:
    """Upload into the collection, made first if it is missing; the stored document."""
    made = await client.post("/api/collections", json={"id": collection, "name": collection})
    assert made.status_code in (201, 409), made.text
    stored = await upload(
        client, content, filename, route=f"/api/collections/{collection}/documents"
    )
    assert stored.status_code == 201, stored.text
    document: dict[str, Any] = stored.json()
    return document


def clean_chunking(text: str, folder: Path) -> list[str]:
    """The chunk texts the same text gives when nothing goes wrong."""
    path = folder / "clean.txt"
    path.write_text(text)
    units = parse_document(path, DocumentType.TEXT)
    return [draft.text for draft in chunk_units(units, TextSplitter(500, 50))]
