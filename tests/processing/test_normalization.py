"""Text is NFKC-normalised as it is parsed, and keyword questions are too: a ligature
set by pdfTeX ("ﬂ") is stored as the letters people type, and either spelling finds it."""

from pathlib import Path

import httpx
import pytest

from app.processing.detection import detect_document_type
from app.processing.parsers import parse_document
from tests.support.files import write_ligature_pdf
from tests.support.uploads import upload

CORPUS_PDF = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "pdf"
LIGATURES = ("\ufb01", "\ufb02")


def parsed_text(path: Path) -> str:
    document_type = detect_document_type(path, path.name)
    return "\n".join(unit.text for unit in parse_document(path, document_type))


def test_ligatures_of_a_generated_pdf_become_letters(tmp_path: Path) -> None:
    pdf = write_ligature_pdf(tmp_path / "l.pdf", [b"Ober\x80\xe4che", b"\x81nden"])

    text = parsed_text(pdf)

    assert text.split() == ["Oberfläche", "finden"]


def test_other_compatibility_characters_fold_too(tmp_path: Path) -> None:
    page = tmp_path / "c.txt"
    full_width = "\uff26\uff55\uff4c\uff4c"  # "Full" in full-width letters
    page.write_text(f"{full_width} width, x\u00b2, \u00bd cup, cafe\u0301, no\u00a0break")

    assert parsed_text(page) == "Full width, x2, 1\u20442 cup, caf\u00e9, no break"


@pytest.mark.skipif(
    not (CORPUS_PDF / "GeoTopo-komprimiert.pdf").exists(),
    reason="needs ../shared/corpus/pdf/GeoTopo-komprimiert.pdf (not in a fresh clone)",
)
def test_the_corpus_pdftex_pdf_keeps_no_ligature() -> None:
    text = parsed_text(CORPUS_PDF / "GeoTopo-komprimiert.pdf")

    assert not any(ligature in text for ligature in LIGATURES)
    assert "Oberfläche" in text


async def test_either_spelling_of_a_ligature_word_finds_the_chunk(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    pdf = write_ligature_pdf(tmp_path / "geo.pdf", [b"Die Ober\x80\xe4che des Torus"])
    stored = await upload(client, pdf.read_bytes(), "geo.pdf", session_id="geo")

    found = {}
    for spelling in ("Oberfläche", "Ober\ufb02äche"):
        answer = await client.post(
            "/api/collections/geo/search", json={"query": spelling, "mode": "keyword"}
        )
        found[spelling] = [r["text"] for r in answer.json()["results"]]

    assert stored.status_code == 200, stored.text
    assert found == {spelling: ["Die Oberfläche des Torus"] for spelling in found}
