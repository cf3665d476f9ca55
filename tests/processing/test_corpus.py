"""Real PDF and DOCX files from ../shared/corpus, through detection, parsing and chunking."""

from functools import cache
from pathlib import Path

import pytest

from app.core.errors import UnprocessableContent, UnsupportedMediaType
from app.processing.chunking import TextSplitter, chunk_units
from app.processing.detection import detect_document_type
from app.processing.parsers import parse_document
from app.processing.units import ChunkDraft

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
if not CORPUS.is_dir():
    pytest.skip(
        "../shared/corpus not found: the corpus tests need the shared folder beside the clone",
        allow_module_level=True,
    )

FILES = sorted([*(CORPUS / "pdf").glob("*.pdf"), *(CORPUS / "docx").glob("*.docx")])
# Documents without a single word in them (checked with unzip): the upload
# endpoint answers "no extractable text" for these.
WITHOUT_TEXT = {"doc-word-default-blank.docx", "having-images.docx", "tbl-having-tables.docx"}
# Every other file must be read: a parser regression must not hide behind a 422.
REFUSED = {"libreoffice-writer-password.pdf"}
SPLITTER = TextSplitter()


@cache
def chunk_file(path: Path) -> list[ChunkDraft]:
    document_type = detect_document_type(path, path.name)
    return list(chunk_units(parse_document(path, document_type), SPLITTER))


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_every_corpus_file_gives_chunks_or_a_clear_error(path: Path) -> None:
    if path.name in REFUSED:
        with pytest.raises((UnsupportedMediaType, UnprocessableContent)):
            chunk_file(path)
        return

    chunks = chunk_file(path)

    if path.name in WITHOUT_TEXT:
        assert chunks == []
        return
    assert chunks
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert all(chunk.text.strip() and len(chunk.text) <= SPLITTER.chunk_size for chunk in chunks)


def test_password_protected_pdf_is_refused_as_encrypted() -> None:
    with pytest.raises(UnprocessableContent) as raised:
        chunk_file(CORPUS / "pdf" / "libreoffice-writer-password.pdf")

    assert raised.value.status_code == 422
    assert "encrypted" in raised.value.message


def test_blank_docx_gives_no_units() -> None:
    path = CORPUS / "docx" / "doc-word-default-blank.docx"

    assert list(parse_document(path, detect_document_type(path, path.name))) == []


def test_large_pdf_is_chunked_page_by_page_to_the_end() -> None:
    chunks = chunk_file(CORPUS / "pdf" / "GeoTopo-komprimiert.pdf")

    pages = {chunk.metadata["page"] for chunk in chunks}
    last_page = max(chunk.metadata.get("page_end", chunk.metadata["page"]) for chunk in chunks)
    assert len(chunks) > 100
    assert len(pages) > 100
    assert last_page == 117
    assert any("Topologie" in chunk.text for chunk in chunks)


def test_docx_tables_and_headings_come_through() -> None:
    chunks = chunk_file(CORPUS / "docx" / "par-known-paragraphs.docx")

    assert chunks[0].metadata == {"section": "Heading Paragraph"}
    assert chunks[0].text.startswith("Heading Paragraph")
