"""How far an ingestion has got: what a progress bar or a job status shows."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from app.processing.units import TextUnit


@dataclass
class IngestProgress:
    """Counts so far. `units_parsed` counts pages (PDF), rows (CSV, XLSX) or paragraphs."""

    units_parsed: int = 0
    chunks_made: int = 0
    chunks_embedded: int = 0
    chunks_stored: int = 0


ProgressCallback = Callable[[IngestProgress], None]
# Called with a document's chunk count once its chunker is done.
ChunkedCallback = Callable[[int], None]


def counted(units: Iterable[TextUnit], progress: IngestProgress) -> Iterator[TextUnit]:
    """The units, counted into `progress` as the parser yields them."""
    for unit in units:
        progress.units_parsed += 1
        yield unit
