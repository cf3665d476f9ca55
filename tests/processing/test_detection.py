import gzip
import random
import zipfile
from pathlib import Path

import pytest

from app.core.errors import UnprocessableContent, UnsupportedMediaType
from app.processing.detection import detect_document_type
from app.processing.units import DocumentType
from tests.support.files import (
    OLE_HEADER,
    PNG_HEADER,
    Heading,
    write_docx,
    write_pdf,
    write_xlsx,
)

SUPPORTED = "supported: PDF, DOCX, XLSX, PPTX, ODT, RTF, CSV, TXT, Markdown, HTML"


def detect(tmp_path: Path, name: str, content: bytes | str) -> DocumentType:
    path = tmp_path / "upload"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return detect_document_type(path, name)


def test_office_formats_are_recognised_by_content_whatever_the_name(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", ["Hello"])
    document = write_docx(tmp_path / "a.docx", [Heading("Title"), "Body"])
    workbook = write_xlsx(tmp_path / "a.xlsx", {"Sheet": [["name"], ["Ada"]]})

    assert detect_document_type(pdf, "report.pdf") == DocumentType.PDF
    assert detect_document_type(pdf, "report.txt") == DocumentType.PDF
    assert detect_document_type(document, "letter.bin") == DocumentType.DOCX
    assert detect_document_type(workbook, "figures.csv") == DocumentType.XLSX


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("people.csv", "name,city\nAda,London\n", DocumentType.CSV),
        ("people.tsv", "name\tcity\nAda\tLondon\n", DocumentType.CSV),
        ("notes.md", "# Notes\n\nSome text.\n", DocumentType.MARKDOWN),
        ("notes.markdown", "Some text.\n", DocumentType.MARKDOWN),
        ("notes.txt", "Just some text.\n", DocumentType.TEXT),
        ("notes", "Just some text.\n", DocumentType.TEXT),
        ("page.html", "<!DOCTYPE html><html><body><p>Hi</p></body></html>", DocumentType.HTML),
        ("page.htm", "<div><p>Hi</p></div>", DocumentType.HTML),
        ("page.txt", "\ufeff  \n<html lang='en'><body>Hi</body></html>", DocumentType.HTML),
        ("page.html", "Plain words that only pretend to be a web page.", DocumentType.TEXT),
        ("import.txt", "import this\nFrom here on it is prose.\n", DocumentType.TEXT),
        ("pdf.md", "# PDF notes\n\nEvery PDF starts with %PDF-1.7.\n", DocumentType.MARKDOWN),
    ],
)
def test_text_formats_are_told_apart_by_content_then_extension(
    tmp_path: Path, name: str, content: str, expected: DocumentType
) -> None:
    assert detect(tmp_path, name, content) == expected


def test_a_pdf_header_after_binary_junk_is_still_a_pdf(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", ["Hello"]).read_bytes()

    assert detect(tmp_path, "a.pdf", b"\x00\x9c\x01junk" + pdf) == DocumentType.PDF
    assert detect(tmp_path, "a.pdf", b"\r\n  " + pdf) == DocumentType.PDF


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_text_in_legacy_and_wide_encodings_is_text(tmp_path: Path, encoding: str) -> None:
    content = "Le café est très bon, même l'après-midi.\n".encode(encoding)

    assert detect(tmp_path, "menu.txt", content) == DocumentType.TEXT


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  ", b"\xef\xbb\xbf \n"])
def test_an_empty_file_is_unprocessable(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(UnprocessableContent) as raised:
        detect(tmp_path, "empty.txt", content)

    assert raised.value.message == "the file is empty"
    assert raised.value.status_code == 422


def test_a_png_named_pdf_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        detect(tmp_path, "scan.pdf", PNG_HEADER + bytes(200))

    assert raised.value.status_code == 415
    assert raised.value.message == (
        f"unsupported file type: Portable Network Graphics file (scan.pdf); {SUPPORTED}"
    )


def test_an_old_office_file_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        detect(tmp_path, "report.doc", OLE_HEADER)

    assert raised.value.message == (
        "unsupported file type: old Microsoft Office file (.doc, .xls or .ppt) "
        f"(report.doc); {SUPPORTED}"
    )


def test_random_binary_is_unsupported(tmp_path: Path) -> None:
    noise = random.Random(7).randbytes(4096)

    with pytest.raises(UnsupportedMediaType) as raised:
        detect(tmp_path, "notes.txt", noise)

    assert raised.value.message.startswith("unsupported file type: ")
    assert raised.value.message.endswith(f"(notes.txt); {SUPPORTED}")


def test_a_gzip_file_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        detect(tmp_path, "data.csv", gzip.compress(b"a,b\n1,2\n" * 100))

    assert raised.value.message == (
        f"unsupported file type: GZIP Archive file (data.csv); {SUPPORTED}"
    )


def test_text_with_nul_bytes_and_no_byte_order_mark_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        detect(tmp_path, "notes.txt", b"hello\x00world\x00" * 100)

    assert raised.value.message == f"unsupported file type: binary data (notes.txt); {SUPPORTED}"


def test_a_zip_that_is_not_an_office_file_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "bundle.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")

    with pytest.raises(UnsupportedMediaType) as raised:
        detect_document_type(path, "bundle.docx")

    assert raised.value.message == f"unsupported file type: ZIP archive (bundle.docx); {SUPPORTED}"


def test_an_opendocument_file_is_named_by_its_declared_type(tmp_path: Path) -> None:
    """Text documents (ODT) are read; other OpenDocument kinds are named when refused."""
    path = tmp_path / "sums.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")

    with pytest.raises(UnsupportedMediaType) as raised:
        detect_document_type(path, "sums.ods")

    assert raised.value.message == (
        "unsupported file type: ZIP-based document "
        f"(application/vnd.oasis.opendocument.spreadsheet) (sums.ods); {SUPPORTED}"
    )


def test_a_damaged_zip_is_unprocessable(tmp_path: Path) -> None:
    with pytest.raises(UnprocessableContent) as raised:
        detect(tmp_path, "letter.docx", b"PK\x03\x04" + bytes(300))

    assert raised.value.message.startswith(
        "the file is a damaged ZIP archive (DOCX and XLSX files are ZIP archives): "
    )
