"""The texts benchmarks run on: generated prose, and the shared corpus when it is present."""

import random
from pathlib import Path

from app.processing.chunking import TextSplitter, chunk_units
from app.processing.parsers import parse_document
from app.processing.units import DocumentType

# ../shared/corpus beside the checkout (its README says what each file is).
SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CRANFIELD = SHARED_CORPUS / "cranfield"
GEOTOPO_PDF = SHARED_CORPUS / "pdf" / "GeoTopo-komprimiert.pdf"

WORDS = [
    "boundary",
    "layer",
    "flow",
    "pressure",
    "wing",
    "shock",
    "heat",
    "transfer",
    "nozzle",
    "turbulence",
    "velocity",
    "supersonic",
    "laminar",
    "separation",
    "drag",
    "lift",
    "vortex",
    "airfoil",
    "compressible",
    "viscous",
    "mach",
    "temperature",
    "gradient",
    "stability",
    "buckling",
    "shell",
    "panel",
    "flutter",
    "load",
    "stress",
]


def paragraphs(count: int) -> list[str]:
    """Distinct paragraphs of about 400 characters: one 500-character chunk each."""
    generator = random.Random(7)
    return [
        f"Report {n}. " + " ".join(generator.choice(WORDS) for _ in range(52)) + "."
        for n in range(count)
    ]


def ragstore_chunks(path: Path) -> list[str]:
    """The chunks ragstore makes of the file, so both approaches embed the same texts."""
    units = parse_document(path, DocumentType.TEXT)
    return [draft.text for draft in chunk_units(units, TextSplitter(500, 50))]
