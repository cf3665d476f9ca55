"""Turning an uploaded file into a stream of small, whole pieces of text.

Parsers are generators so that a large CSV or a long PDF flows through
chunking and embedding without ever being held in memory whole; the caller
runs them in a worker thread because every library here blocks.
"""

import csv
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import docx
import openpyxl
import pandas as pd
import pptx
import pypdf
from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag
from bs4.exceptions import ParserRejectedMarkup
from docx.opc.exceptions import OpcError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml.etree import LxmlError
from odf import teletype
from odf.namespaces import TABLENS, TEXTNS
from odf.opendocument import load as odf_load
from odf.table import TableRow as OdfTableRow
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.exc import PackageNotFoundError
from striprtf.striprtf import rtf_to_text

from app.core.errors import AppError, UnprocessableContent
from app.processing.detection import SAMPLE_BYTES, sniff_text_encoding
from app.processing.normalization import normalize_text
from app.processing.units import DocumentType, TextUnit

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What a file may cost to read; the service fills these from the settings."""

    max_unpacked_bytes: int = 200 * 1024 * 1024
    """DOCX and XLSX are ZIP archives: a few kilobytes can unpack to gigabytes."""
    max_pdf_pages: int = 5_000
    """Every page costs a parse even when blank: a small file can hold tens of thousands."""
    max_csv_columns: int = 10_000
    """Beyond this a "CSV" is not a table anyone reads row by row, and pandas slows
    quadratically over a header of repeated names."""


_CSV_ROWS_PER_BATCH = 1_000
_DELIMITER_SAMPLE_CHARS = 16 * 1024
_CSV_DELIMITERS = ",;\t|"
_REASON_MAX_CHARS = 200

_MARKDOWN_HEADING = re.compile(r" {0,3}#{1,6}[ \t]+(?P<title>.+?)(?:[ \t]+#+)?[ \t]*")
_MARKDOWN_FENCE = re.compile(r" {0,3}(?:```|~~~)")

_HTML_INVISIBLE = ["head", "script", "style", "noscript", "template", "svg"]
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
        "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
        "table", "tr", "ul",
    }
    | _HTML_HEADINGS
)  # fmt: skip
_HTML_CELLS = frozenset({"td", "th"})
_HTML_WHITESPACE = re.compile(r"\s+")


def parse_document(
    path: Path, document_type: DocumentType, limits: ParseLimits = ParseLimits()
) -> Iterator[TextUnit]:
    """Units in document order, blank ones left out.

    Every failure, from the first `next()` on, is an `UnprocessableContent`
    whose message names the problem: a library's own exception must never
    reach the caller as a 500.
    """
    parser = _PARSERS[document_type]
    if document_type in (DocumentType.DOCX, DocumentType.XLSX, DocumentType.PPTX, DocumentType.ODT):
        _check_unpacked_size(path, parser.label, limits.max_unpacked_bytes)
    units = parser.parse(path, limits)
    while True:
        # Only the parser's own work is guarded: the yield below hands control to
        # the consumer, whose exceptions are none of this function's business.
        try:
            unit = next(units)
        except StopIteration:
            return
        except (AppError, MemoryError):
            raise
        except parser.expected_errors as error:
            raise _unreadable(parser.label, error, path) from error
        except Exception as error:
            logger.warning("unexpected error while parsing a %s", parser.label, exc_info=True)
            raise _unreadable(parser.label, error, path) from error
        if unit.text.strip():
            yield replace(unit, text=normalize_text(unit.text))


def _check_unpacked_size(path: Path, label: str, limit: int) -> None:
    # The declared sizes are safe to trust: zipfile never inflates an entry past
    # the size its header declares.
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise _unreadable(label, error, path) from error
    if unpacked > limit:
        raise UnprocessableContent(
            f"the {label} expands to more than {limit // (1024 * 1024)} MB when unpacked "
            f"({unpacked // (1024 * 1024)} MB); it is refused as a possible ZIP bomb"
        )


def _unreadable(label: str, error: BaseException, path: Path) -> UnprocessableContent:
    if isinstance(error, UnicodeDecodeError):
        return UnprocessableContent(
            f"the {label} could not be read: it is not valid {error.encoding} text throughout"
        )
    # Library messages may quote the server-side temporary path: users never see it.
    reason = (str(error) or type(error).__name__).replace(str(path), "the file")
    if len(reason) > _REASON_MAX_CHARS:
        reason = reason[:_REASON_MAX_CHARS] + "..."
    return UnprocessableContent(f"the {label} could not be read: it looks damaged ({reason})")


def _section_metadata(section: str | None) -> dict[str, Any]:
    return {"section": section} if section else {}


def _parse_pdf(path: Path, limits: ParseLimits) -> Iterator[TextUnit]:
    reader = pypdf.PdfReader(path)
    # Owner-password-only PDFs (printing or copying restricted) open with an empty
    # user password; only a real user password stops extraction.
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnprocessableContent(
            "the PDF is encrypted (password-protected); upload a decrypted copy"
        )
    pages = len(reader.pages)
    if pages > limits.max_pdf_pages:
        raise UnprocessableContent(
            f"the PDF has {pages} pages; at most {limits.max_pdf_pages} are supported"
        )
    for number, page in enumerate(reader.pages, start=1):
        yield TextUnit(page.extract_text(), {"page": number})


def _parse_docx(path: Path, _limits: ParseLimits) -> Iterator[TextUnit]:
    document = docx.Document(str(path))
    headers, footers = _docx_page_furniture(document)
    for text in headers:
        yield TextUnit(text, {})
    section: str | None = None
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            yield TextUnit(_docx_table_text(block), _section_metadata(section))
            continue
        if _is_docx_heading(block) and block.text.strip():
            section = block.text.strip()
        yield TextUnit(block.text, _section_metadata(section))
    for text in footers:
        yield TextUnit(text, {})


def _docx_page_furniture(document: Any) -> tuple[list[str], list[str]]:
    """The text of the headers and footers of every section (each distinct text once: a
    header linked to the previous section's is the same header)."""
    headers: list[str] = []
    footers: list[str] = []
    for section in document.sections:
        for parts, found in ((section.header, headers), (section.footer, footers)):
            if parts.is_linked_to_previous:
                continue
            text = "\n".join(
                _docx_table_text(block) if isinstance(block, Table) else block.text
                for block in parts.iter_inner_content()
            ).strip()
            if text and text not in found:
                found.append(text)
    return headers, footers


def _is_docx_heading(paragraph: Paragraph) -> bool:
    style = paragraph.style
    name = style.name if style is not None else None
    return name is not None and name.startswith(("Heading", "Title"))


def _docx_table_text(table: Table) -> str:
    lines = []
    for row in table.rows:
        cells = []
        previous = None
        for cell in row.cells:
            # A merged cell is repeated for every grid column it spans.
            if cell is not previous:
                nested = " ".join(_docx_table_text(inner) for inner in cell.tables)
                cells.append(" ".join(f"{cell.text} {nested}".split()))
            previous = cell
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _parse_pptx(path: Path, _limits: ParseLimits) -> Iterator[TextUnit]:
    """One unit per slide: its title as the section, its text boxes, tables and notes."""
    presentation = pptx.Presentation(str(path))
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        texts = list(_pptx_texts(slide.shapes))
        if slide.has_notes_slide:
            texts.append(slide.notes_slide.notes_text_frame.text)
        metadata: dict[str, Any] = {"page": number, **_section_metadata(title or None)}
        yield TextUnit("\n\n".join(text for text in texts if text.strip()), metadata)


def _pptx_texts(shapes: Any) -> Iterator[str]:
    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _pptx_texts(shape.shapes)
        elif shape.has_text_frame:
            yield shape.text_frame.text
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in shape.table.rows]
            yield "\n".join(row for row in rows if row.strip(" |"))


def _parse_odt(path: Path, _limits: ParseLimits) -> Iterator[TextUnit]:
    """Headings (as sections), paragraphs, list items and tables, in document order."""
    document = odf_load(str(path))
    section: str | None = None
    for kind, text in _odt_blocks(document.text):
        if kind == "heading" and text.strip():
            section = text.strip()
        yield TextUnit(text, _section_metadata(section))


def _odt_blocks(node: Any) -> Iterator[tuple[str, str]]:
    for child in node.childNodes:
        name = getattr(child, "qname", None)
        if name == (TEXTNS, "h"):
            yield "heading", teletype.extractText(child)
        elif name == (TEXTNS, "p"):
            yield "paragraph", teletype.extractText(child)
        elif name == (TABLENS, "table"):
            yield "table", _odt_table_text(child)
        elif getattr(child, "childNodes", None):
            # Lists, list items, sections and frames hold paragraphs of their own.
            yield from _odt_blocks(child)


def _odt_table_text(table: Any) -> str:
    lines = []
    for row in table.getElementsByType(OdfTableRow):
        cells = [" ".join(teletype.extractText(c).split()) for c in row.childNodes]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _parse_rtf(path: Path, _limits: ParseLimits) -> Iterator[TextUnit]:
    """The text without its markup, paragraph by paragraph. RTF is 7-bit text; other
    characters come as escapes, which striprtf decodes."""
    text = rtf_to_text(path.read_text(encoding="cp1252", errors="replace"), errors="ignore")  # type: ignore[no-untyped-call]
    for paragraph in re.split(r"\n\s*\n", text):
        yield TextUnit(paragraph, {})


def _parse_xlsx(path: Path, _limits: ParseLimits) -> Iterator[TextUnit]:
    # A file object, not a path: openpyxl refuses paths whose extension it does
    # not know, and uploads are stored under names of their own.
    with path.open("rb") as file:
        workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
        try:
            for sheet in workbook.worksheets:
                yield from _sheet_units(sheet)
        finally:
            workbook.close()


def _sheet_units(sheet: ReadOnlyWorksheet) -> Iterator[TextUnit]:
    header: list[str] | None = None
    number = 0
    for values in sheet.iter_rows(values_only=True):
        cells = [_spreadsheet_value(value) for value in values]
        if header is None:
            if any(cells):
                header = cells
            continue
        number += 1
        yield TextUnit(
            _record_text(header, cells), {"sheet": sheet.title, "rows": [number, number]}
        )


def _spreadsheet_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime) and value.time() == time():
        return value.date().isoformat()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _record_text(header: Sequence[str], values: Iterable[str]) -> str:
    """A row as `column: value` lines: each value keeps its meaning once the row is a chunk."""
    lines = []
    for index, value in enumerate(values):
        if not value.strip():
            continue
        name = header[index] if index < len(header) else ""
        lines.append(f"{name or f'column {index + 1}'}: {value.strip()}")
    return "\n".join(lines)


def _parse_csv(path: Path, limits: ParseLimits) -> Iterator[TextUnit]:
    sample = _read_sample(path)
    encoding = _text_encoding(sample)
    delimiter = _sniff_delimiter(sample.decode(encoding, errors="ignore"))
    # Counted before pandas reads the header: a million repeated names took it minutes.
    width = _header_width(path, encoding, delimiter)
    if width > limits.max_csv_columns:
        raise UnprocessableContent(
            f"the CSV file has {width} columns; at most {limits.max_csv_columns} are supported"
        )
    columns = list(_read_csv(path, encoding, delimiter, nrows=0).columns)
    # pandas names a blank header cell "Unnamed: <n>": a column number reads better.
    header = ["" if str(name).startswith("Unnamed: ") else str(name) for name in columns]
    number = 0
    with _read_csv(path, encoding, delimiter, chunksize=_CSV_ROWS_PER_BATCH) as batches:
        for batch in batches:
            for values in batch.itertuples(index=False, name=None):
                number += 1
                yield TextUnit(_record_text(header, values), {"rows": [number, number]})


def _header_width(path: Path, encoding: str, delimiter: str) -> int:
    """Columns of the first line, read in blocks; a quoted delimiter counts too, which can
    only overstate a width that matters at thousands of columns."""
    width = 1
    with path.open(encoding=encoding, errors="replace", newline="") as file:
        while block := file.read(SAMPLE_BYTES):
            line, newline, _ = block.partition("\n")
            width += line.count(delimiter)
            if newline:
                break
    return width


def _read_csv(path: Path, encoding: str, delimiter: str, **options: int) -> Any:
    """The header alone (`nrows=0`) or a reader of row batches (`chunksize=n`)."""
    # dtype=str and no NA conversion: "NA", "null" or "007" are text to index as written.
    return pd.read_csv(
        path,
        sep=delimiter,
        encoding=encoding,
        dtype=str,
        na_filter=False,
        on_bad_lines="skip",
        **options,
    )


def _sniff_delimiter(sample_text: str) -> str:
    # Whole lines only: the last line of a sample is usually cut short.
    head = sample_text[:_DELIMITER_SAMPLE_CHARS]
    head = head[: head.rfind("\n") + 1] or head
    try:
        return csv.Sniffer().sniff(head, delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _parse_text(path: Path, _limits: ParseLimits) -> Iterator[TextUnit]:
    yield from _plain_text_units(path, markdown=False)


def _parse_markdown(path: Path, _limits: ParseLimits) -> Iterator[TextUnit]:
    yield from _plain_text_units(path, markdown=True)


def _plain_text_units(path: Path, *, markdown: bool) -> Iterator[TextUnit]:
    """Paragraphs split on blank lines; in Markdown, ATX headings also start a section.

    Lines inside a fenced code block are never headings (`# comment`) and
    their blank lines do not split the block.
    """
    encoding = _text_encoding(_read_sample(path))
    section: str | None = None
    paragraph: list[str] = []
    in_fence = False
    with path.open(encoding=encoding) as lines:
        for raw_line in lines:
            line = raw_line.rstrip()
            if markdown and _MARKDOWN_FENCE.match(line):
                in_fence = not in_fence
            heading = _MARKDOWN_HEADING.fullmatch(line) if markdown and not in_fence else None
            if heading or (not line and not in_fence):
                yield TextUnit("\n".join(paragraph), _section_metadata(section))
                paragraph = []
            if heading:
                section = heading["title"]
                yield TextUnit(section, _section_metadata(section))
            elif line or in_fence:
                paragraph.append(line)
    yield TextUnit("\n".join(paragraph), _section_metadata(section))


def _read_sample(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(SAMPLE_BYTES)


def _text_encoding(sample: bytes) -> str:
    # Detection has refused binary files already; if the sniffer still finds no
    # encoding, a strict UTF-8 decode stops at the first bad byte with a clear error.
    return sniff_text_encoding(sample) or "utf-8"


def _parse_html(path: Path, _limits: ParseLimits) -> Iterator[TextUnit]:
    # Bytes, not text: BeautifulSoup honours the page's own <meta charset>.
    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    for element in soup.find_all(_HTML_INVISIBLE):
        element.decompose()
    section: str | None = None
    for text, is_heading in _html_blocks(soup):
        if is_heading:
            section = text
        yield TextUnit(text, _section_metadata(section))


def _html_blocks(root: Tag) -> Iterator[tuple[str, bool]]:
    """(text, is_heading) for each block of visible text, in reading order.

    The tree is walked with an explicit stack, not recursion: deeply nested
    markup must not hit Python's recursion limit.
    """
    parts: list[str] = []
    preformatted = 0
    stack: list[tuple[Tag, Iterator[Any]]] = [(root, iter(root.children))]
    while stack:
        tag, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            preformatted -= tag.name == "pre"
            if tag.name in _HTML_BLOCKS:
                yield from _html_flush(parts, is_heading=tag.name in _HTML_HEADINGS)
        elif isinstance(child, Tag):
            if child.name in _HTML_BLOCKS:
                yield from _html_flush(parts, is_heading=False)
            elif child.name == "br":
                parts.append("\n")
            elif child.name in _HTML_CELLS and parts and not parts[-1].endswith("\n"):
                parts.append(" | ")
            preformatted += child.name == "pre"
            stack.append((child, iter(child.children)))
        elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
            parts.append(str(child) if preformatted else _HTML_WHITESPACE.sub(" ", child))
    yield from _html_flush(parts, is_heading=False)


def _html_flush(parts: list[str], *, is_heading: bool) -> Iterator[tuple[str, bool]]:
    text = "\n".join(line.strip() for line in "".join(parts).splitlines()).strip()
    parts.clear()
    if text:
        yield text, is_heading


@dataclass(frozen=True, slots=True)
class _Parser:
    label: str
    """How messages name the format: "the <label> could not be read"."""
    parse: Callable[[Path, ParseLimits], Iterator[TextUnit]]
    expected_errors: tuple[type[Exception], ...]
    """What a damaged file of this format raises: answered with 422, but not logged."""


_PARSERS: dict[DocumentType, _Parser] = {
    DocumentType.PDF: _Parser("PDF", _parse_pdf, (pypdf.errors.PyPdfError,)),
    DocumentType.DOCX: _Parser(
        "DOCX", _parse_docx, (zipfile.BadZipFile, OpcError, KeyError, LxmlError)
    ),
    DocumentType.XLSX: _Parser(
        "XLSX",
        _parse_xlsx,
        (zipfile.BadZipFile, InvalidFileException, KeyError, LxmlError, ParseError),
    ),
    DocumentType.CSV: _Parser(
        "CSV file",
        _parse_csv,
        (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError),
    ),
    DocumentType.TEXT: _Parser("text file", _parse_text, (UnicodeDecodeError,)),
    DocumentType.MARKDOWN: _Parser("Markdown file", _parse_markdown, (UnicodeDecodeError,)),
    DocumentType.HTML: _Parser("HTML file", _parse_html, (ParserRejectedMarkup,)),
    DocumentType.PPTX: _Parser(
        "PPTX", _parse_pptx, (zipfile.BadZipFile, PackageNotFoundError, KeyError, LxmlError)
    ),
    DocumentType.ODT: _Parser("ODT", _parse_odt, (zipfile.BadZipFile, KeyError, ParseError)),
    DocumentType.RTF: _Parser("RTF file", _parse_rtf, (ValueError,)),
}
