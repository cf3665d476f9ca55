"""What parsing produces and what chunking makes of it."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DocumentType(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    XLSX = "xlsx"
    CSV = "csv"
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"
    PPTX = "pptx"
    ODT = "odt"
    RTF = "rtf"


@dataclass(frozen=True, slots=True)
class TextUnit:
    """A piece of a parsed document, small and whole: a paragraph, a table, a CSV row.

    `metadata` says where it came from: `page` (1-based: a PDF's page, a PPTX's
    slide), `section` (the nearest heading: DOCX, ODT, Markdown, HTML; a slide's
    title), `sheet` (XLSX), `rows` as `[first, last]` (1-based data rows: CSV, XLSX).
    """

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A chunk before it is embedded: its position, text and merged metadata."""

    index: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
