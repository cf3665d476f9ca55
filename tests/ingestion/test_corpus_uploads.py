"""Every real PDF and DOCX in ../shared/corpus, uploaded through the API: chunks, or a clear 4xx."""

import asyncio
from pathlib import Path

import httpx
import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
if not CORPUS.is_dir():
    pytest.skip(
        "../shared/corpus not found: the corpus tests need the shared folder beside the clone",
        allow_module_level=True,
    )

FILES = sorted([*CORPUS.glob("pdf/*.pdf"), *CORPUS.glob("docx/*.docx")])
# Files with no words in them (checked by unzipping them): the answer is a clear 422.
NO_TEXT = {"doc-word-default-blank.docx", "having-images.docx", "tbl-having-tables.docx"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
async def test_each_corpus_file_gets_chunks_or_a_clear_answer(
    client: httpx.AsyncClient, path: Path
) -> None:
    content = await asyncio.to_thread(path.read_bytes)

    response = await client.post("/api/upload-document", files={"file": (path.name, content)})

    if path.name == "libreoffice-writer-password.pdf":
        assert response.status_code == 422
        assert "encrypted" in response.json()["detail"]
    elif path.name in NO_TEXT:
        assert response.status_code == 422
        assert response.json()["detail"] == f"no extractable text in {path.name}"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["chunk_count"] > 0
    assert (await client.get("/api/health")).status_code == 200
