"""Cutting parsed text into chunks small enough to embed and whole enough to read.

Modelled on llama_index's SentenceSplitter: split at the coarsest boundary
that makes pieces fit (paragraph, sentence, line, clause, word, and only then
character), then merge pieces greedily up to the size, starting each chunk
with the tail of the previous one so a fact cut in two is still found whole.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from app.processing.units import ChunkDraft, TextUnit

# Each pattern matches the whitespace (or punctuation) a piece may end with; the
# match stays with the piece before it, so pieces join back into the text exactly.
_BOUNDARIES = (
    re.compile(r"\n\n+"),
    # Sentence ends, closing quotes included; CJK full stops need no space after them.
    re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+|[\u3002\uff01\uff1f]+"),
    re.compile(r"\n"),
    re.compile(r"[,;:]\s+|[\uff0c\uff1b\uff1a\u3001]"),
    re.compile(r"\s+"),
)
_WORD_GAP = re.compile(r"\s+")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNIT_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class _Piece:
    """A run of text that fits in one chunk, with the metadata of the unit it came from."""

    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class TextSplitter:
    """Sizes are in characters: the same cut whichever embedding model reads it."""

    chunk_size: int = 500
    chunk_overlap: int = 50

    def __post_init__(self) -> None:
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size ({self.chunk_size}) must be positive")
        if self.chunk_overlap < 0:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must not be negative")
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )

    def split_text(self, text: str) -> list[str]:
        """Chunks of at most `chunk_size` characters, cut between words wherever a word fits."""
        pieces = (_Piece(part, {}) for part in self._pieces(_normalize_whitespace(text)))
        return [chunk for chunk, _ in self._merge(pieces)]

    def _pieces(self, text: str, level: int = 0) -> Iterator[str]:
        """`text` cut at its coarsest boundaries into pieces that each fit a chunk."""
        if level == len(_BOUNDARIES):
            # One word longer than a chunk: nothing is left but to cut it anywhere.
            for start in range(0, len(text), self.chunk_size):
                yield text[start : start + self.chunk_size]
            return
        for part in _cut_after(text, _BOUNDARIES[level]):
            if not part.strip():
                continue
            if len(part.rstrip()) <= self.chunk_size:
                yield part
            else:
                yield from self._pieces(part, level + 1)

    def _merge(self, pieces: Iterable[_Piece]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(chunk text, metadata of its pieces) while reading `pieces` only as far as needed."""
        current: list[_Piece] = []
        text = ""
        for piece in pieces:
            if current and len((text + piece.text).rstrip()) > self.chunk_size:
                yield text.strip(), [part.metadata for part in current]
                current = self._overlap(current, text, len(piece.text.rstrip()))
                text = "".join(part.text for part in current)
            current.append(piece)
            text += piece.text
        if current:
            yield text.strip(), [part.metadata for part in current]

    def _overlap(self, pieces: list[_Piece], text: str, next_length: int) -> list[_Piece]:
        """The end of the last chunk, from a word's start, leaving room for the next piece."""
        body = text.rstrip()
        gap = len(text) - len(body)
        limit = min(self.chunk_overlap, self.chunk_size - next_length - gap)
        # Only the gaps that end within `limit` of the end qualify: the search starts there
        # (inside a gap it finds the rest of it, which ends where the gap does).
        start = next(
            (
                m.end()
                for m in _WORD_GAP.finditer(body, max(len(body) - limit - 1, 0))
                if len(body) - m.end() <= limit
            ),
            None,
        )
        if start is None:
            return []
        kept: list[_Piece] = []
        offset = 0
        for piece in pieces:
            end = offset + len(piece.text)
            if end > start:
                kept.append(_Piece(piece.text[max(start - offset, 0) :], piece.metadata))
            offset = end
        return kept


def chunk_units(units: Iterable[TextUnit], splitter: TextSplitter) -> Iterator[ChunkDraft]:
    """Consecutive small units packed into chunks, oversized ones split, all read lazily.

    Units are separated by a blank line inside a chunk, and each chunk's
    metadata says where its text came from (see `_merge_metadata`).
    """
    merged = splitter._merge(_unit_pieces(units, splitter))
    for index, (text, metadata) in enumerate(merged):
        yield ChunkDraft(index=index, text=text, metadata=_merge_metadata(metadata))


def _unit_pieces(units: Iterable[TextUnit], splitter: TextSplitter) -> Iterator[_Piece]:
    for unit in units:
        # One piece behind, so the unit's last piece can end with the separator.
        previous: str | None = None
        for part in splitter._pieces(_normalize_whitespace(unit.text)):
            if previous is not None:
                yield _Piece(previous, unit.metadata)
            previous = part
        if previous is not None:
            yield _Piece(previous.rstrip() + _UNIT_SEPARATOR, unit.metadata)


def _merge_metadata(metadata: list[dict[str, Any]]) -> dict[str, Any]:
    """Where a chunk's text came from, given its units' metadata in order.

    `page` is the first page and `page_end` the last when they differ;
    `section` and `sheet` are the first given, and `sections` lists every
    section the chunk spans when there are several; `rows` spans the rows of the
    first sheet only, since a range across two sheets would point nowhere.
    """
    merged: dict[str, Any] = {}
    pages = [item["page"] for item in metadata if "page" in item]
    if pages:
        merged["page"] = pages[0]
        if pages[-1] != pages[0]:
            merged["page_end"] = pages[-1]
    for key in ("section", "sheet"):
        value = next((item[key] for item in metadata if item.get(key)), None)
        if value is not None:
            merged[key] = _UNSTORABLE.sub("", str(value))
    sections = list(
        dict.fromkeys(_UNSTORABLE.sub("", str(i["section"])) for i in metadata if i.get("section"))
    )
    if len(sections) > 1:
        merged["sections"] = sections
    rows = [
        item["rows"]
        for item in metadata
        if "rows" in item and item.get("sheet") == merged.get("sheet")
    ]
    if rows:
        merged["rows"] = [min(first for first, _ in rows), max(last for _, last in rows)]
    return merged


def _normalize_whitespace(text: str) -> str:
    """Runs of spaces and tabs become one space; paragraph breaks stay as one blank line.

    NUL characters and lone surrogates, which some PDFs' text extraction yields,
    are dropped: PostgreSQL text cannot store them.
    """
    # String methods rather than regular expressions (`[^\S\n]+` → " ", ` ?\n ?` → "\n",
    # `\n{3,}` → "\n\n"), with the same result: str.split() splits on what `\s` matches.
    # 0.04 s instead of 0.21 s for a 4 MB text, in the server's one thread that also
    # decodes the embeddings (benchmark 1b, session 22).
    if not text.isascii() or "\x00" in text:
        text = _UNSTORABLE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join([" ".join(line.split()) for line in text.split("\n")])
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def _cut_after(text: str, boundary: re.Pattern[str]) -> list[str]:
    ends = [match.end() for match in boundary.finditer(text)]
    starts = [0, *ends]
    return [text[start:end] for start, end in zip(starts, [*ends, len(text)], strict=True)]
