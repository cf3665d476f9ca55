"""How far an ingestion has got: what a progress bar or a job status shows."""

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from app.processing.units import TextUnit


@dataclass
class IngestProgress:
    """Counts so far. `units_parsed` counts pages (PDF), rows (CSV, XLSX) or paragraphs."""

    units_parsed: int = 0
    chunks_made: int = 0
    chunks_embedded: int = 0
    chunks_stored: int = 0


ProgressCallback = Callable[[IngestProgress], None]


class BuildObserver(Protocol):
    """What the service does while a cache entry is built, ahead of its commit."""

    def chunked(self, chunk_count: int) -> None:
        """The chunker is done: the entry has `chunk_count` chunks."""

    def stored(self, builder: uuid.UUID, positions: range, chunks_made: int) -> None:
        """The chunks at `positions` are in the entry, built by `builder` (a new builder
        after a take-over), of the `chunks_made` so far."""

    async def before_complete(self, builder: uuid.UUID) -> None:
        """Every chunk is stored; the entry is completed (and its builder's lease ended)
        when this returns."""


def counted(units: Iterable[TextUnit], progress: IngestProgress) -> Iterator[TextUnit]:
    """The units, counted into `progress` as the parser yields them."""
    for unit in units:
        progress.units_parsed += 1
        yield unit
