"""What an uploaded file really is, judged from its bytes.

Users rename files and browsers guess content types, so neither the extension
nor the declared type is trusted to tell formats apart: the bytes decide
between PDF, the ZIP-based Office formats, other binaries and text, and the
extension only chooses among text formats, which no signature separates.
"""

import codecs
import re
import zipfile
from pathlib import Path
from typing import BinaryIO

import charset_normalizer
import puremagic

from app.core.errors import UnprocessableContent, UnsupportedMediaType
from app.processing.units import DocumentType

SAMPLE_BYTES = 64 * 1024
"""How much of a file the sniffers read: enough for any encoding detector, cheap on 1 GB."""

SUPPORTED_TYPES = "PDF, DOCX, XLSX, PPTX, ODT, RTF, CSV, TXT, Markdown, HTML"
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"

_PDF_MAGIC = b"%PDF-"
_PDF_HEADER_WINDOW = 1024
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Text without a byte-order mark is never read as UTF-16/32: the detector
# happily reads short Latin-1 samples as UTF-16 ("café" came out as CJK).
_WIDE_ENCODINGS = ["utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be"]
# Bytes that text never starts with: a signature holding one is a binary format,
# whereas all-printable signatures ("import ", "From ") also open ordinary text.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")

_HTML_START = re.compile(r"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_MARKUP_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|!--)[\s>/]")
_EXTENSION_TYPES = {
    ".csv": DocumentType.CSV,
    ".tsv": DocumentType.CSV,
    ".md": DocumentType.MARKDOWN,
    ".markdown": DocumentType.MARKDOWN,
}
_HTML_EXTENSIONS = {".html", ".htm"}

# How the refusal of a type begins (OpenAI's face reports it as `unsupported_file`).
UNSUPPORTED_FILE_TYPE = "unsupported file type"


def detect_document_type(path: Path, filename: str) -> DocumentType:
    """Raises 422 for an empty file and 415 for anything that is not a supported format."""
    with path.open("rb") as file:
        sample = file.read(SAMPLE_BYTES)
        if _is_blank(sample) and _rest_is_blank(file):
            raise UnprocessableContent("the file is empty")
    if _is_pdf(sample):
        return DocumentType.PDF
    if sample.startswith(_ZIP_MAGICS):
        return _detect_zip_type(path, filename)
    binary_format = _binary_signature(sample)
    if binary_format is not None:
        raise _unsupported(binary_format, filename)
    encoding = sniff_text_encoding(sample)
    if encoding is None:
        raise _unsupported(_guess_format(sample) or "binary data", filename)
    return _detect_text_type(sample.decode(encoding, errors="ignore"), filename)


def sniff_text_encoding(sample: bytes) -> str | None:
    """The encoding that decodes `sample` (the start of a file) as text, or None for binary.

    UTF-8 is tried first because it is by far the most common and a strict
    decode proves it, where statistical detection only guesses.
    """
    for mark, encoding in _BYTE_ORDER_MARKS:
        if sample.startswith(mark):
            return encoding
    if b"\x00" in sample:
        # Binary, as far as anyone can tell: UTF-16 and UTF-32 text, the only text
        # with NUL bytes, comes with a byte-order mark from every common editor.
        return None
    if _is_utf8_prefix(sample):
        return "utf-8"
    results = charset_normalizer.from_bytes(sample, cp_exclusion=_WIDE_ENCODINGS)
    best = results.best()
    if best is None:
        return None
    # The detector's language scores are noise on short samples: it read French
    # as the DOS code page cp857 (a multiplication sign for "è") and German as
    # Central European cp1250. Western cp1252, by far the commonest legacy
    # encoding, wins whenever it decodes the sample as cleanly as the favourite.
    clean = [match for match in results if match.chaos <= best.chaos]
    if any("cp1252" in match.could_be_from_charset for match in clean):
        return "cp1252"
    return best.encoding


def _is_blank(data: bytes) -> bool:
    return not data.removeprefix(codecs.BOM_UTF8).strip()


def _rest_is_blank(file: BinaryIO) -> bool:
    """Reads on only when the sample was all whitespace, which real documents never are."""
    while block := file.read(SAMPLE_BYTES):
        if block.strip():
            return False
    return True


def _is_pdf(sample: bytes) -> bool:
    """The PDF specification lets the header sit anywhere in the first kilobyte.

    Only whitespace or binary bytes may come before it, though: a text file
    that merely mentions "%PDF-" near its start is still text.
    """
    head = sample[:_PDF_HEADER_WINDOW]
    offset = head.find(_PDF_MAGIC)
    if offset < 0:
        return False
    prefix = head[:offset]
    return _is_blank(prefix) or sniff_text_encoding(prefix) is None


def _is_utf8_prefix(sample: bytes) -> bool:
    # Not final when the sample is a prefix that may end in the middle of a multi-byte
    # character; a shorter sample is the whole file, and a Latin-1 "café" at its very
    # end must not pass for the start of a UTF-8 sequence.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) < SAMPLE_BYTES)
    except UnicodeDecodeError:
        return False
    return True


def _detect_zip_type(path: Path, filename: str) -> DocumentType:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names:
                return DocumentType.DOCX
            if "xl/workbook.xml" in names:
                return DocumentType.XLSX
            if "ppt/presentation.xml" in names:
                return DocumentType.PPTX
            if "mimetype" in names and archive.read("mimetype").strip() == ODT_MIMETYPE:
                return DocumentType.ODT
            raise _unsupported(_describe_zip(archive, names), filename)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:
        raise UnprocessableContent(
            f"the file is a damaged ZIP archive (DOCX and XLSX files are ZIP archives): {error}"
        ) from error


def _describe_zip(archive: zipfile.ZipFile, names: set[str]) -> str:
    if "mimetype" in names:
        declared = archive.read("mimetype")[:100].decode("ascii", errors="replace").strip()
        return f"ZIP-based document ({declared})"
    return "ZIP archive"


def _binary_signature(sample: bytes) -> str | None:
    if sample.startswith(_OLE_MAGIC):
        return "old Microsoft Office file (.doc, .xls or .ppt)"
    for signature, name in _magic_matches(sample):
        if _CONTROL_BYTES.search(signature):
            return name
    return None


def _guess_format(sample: bytes) -> str | None:
    matches = _magic_matches(sample)
    return matches[0][1] if matches else None


def _magic_matches(sample: bytes) -> list[tuple[bytes, str]]:
    """(signature, format name) pairs, the likeliest first, judged by the bytes alone."""
    try:
        matches = puremagic.magic_string(sample)
    except puremagic.PureError:
        return []
    return [(bytes(match.byte_match), str(match.name)) for match in matches]


def _detect_text_type(text: str, filename: str) -> DocumentType:
    extension = Path(filename).suffix.lower()
    start = text.lstrip("\ufeff \t\r\n")
    if start.startswith("{\\rtf"):
        return DocumentType.RTF
    if _HTML_START.match(start) or (
        extension in _HTML_EXTENSIONS and _MARKUP_TAG.search(start) is not None
    ):
        return DocumentType.HTML
    return _EXTENSION_TYPES.get(extension, DocumentType.TEXT)


def _unsupported(what: str, filename: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"{UNSUPPORTED_FILE_TYPE}: {what} ({filename}); supported: {SUPPORTED_TYPES}"
    )
