"""PPTX, ODT and RTF are read; DOCX headers, footers and nested tables are kept; a chunk
that spans headings names every one."""

from pathlib import Path

import docx
import httpx
import pptx
from odf.opendocument import OpenDocumentText
from odf.table import Table, TableCell, TableRow
from odf.text import H, P

from app.processing.chunking import TextSplitter, chunk_units
from app.processing.detection import detect_document_type
from app.processing.parsers import parse_document
from app.processing.units import DocumentType, TextUnit
from tests.support.uploads import upload

RTF = (
    r"{\rtf1\ansi\deff0{\fonttbl{\f0\fswiss Helvetica;}}\f0\pard "
    r"Reset the {\b X200} by holding the button.\par\par Caf\'e9 mode is the second.\par}"
)


def units(path: Path) -> list[TextUnit]:
    return list(parse_document(path, detect_document_type(path, path.name)))


def write_pptx(path: Path) -> Path:
    deck = pptx.Presentation()
    for title, body, notes in (
        ("Resetting", "Hold the power button for ten seconds.", "Mention the light."),
        ("Pairing", "Press pair twice.", ""),
    ):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text_frame.text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    deck.save(str(path))
    return path


def write_odt(path: Path) -> Path:
    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Resetting"))
    document.text.addElement(P(text="Hold the power button for ten seconds."))
    table = Table()
    row = TableRow()
    for value in ("model", "X200"):
        cell = TableCell()
        cell.addElement(P(text=value))
        row.addElement(cell)
    table.addElement(row)
    document.text.addElement(table)
    document.text.addElement(H(outlinelevel=1, text="Pairing"))
    document.text.addElement(P(text="Press pair twice."))
    document.save(str(path))
    return path


def test_pptx_slides_are_units_with_their_number_and_title(tmp_path: Path) -> None:
    found = units(write_pptx(tmp_path / "deck.pptx"))

    assert detect_document_type(tmp_path / "deck.pptx", "deck.pptx") == DocumentType.PPTX
    assert [(u.metadata["page"], u.metadata["section"]) for u in found] == [
        (1, "Resetting"),
        (2, "Pairing"),
    ]
    assert "Hold the power button" in found[0].text and "Mention the light." in found[0].text


def test_odt_headings_paragraphs_and_tables_are_read(tmp_path: Path) -> None:
    found = units(write_odt(tmp_path / "manual.odt"))

    assert [(u.text, u.metadata.get("section")) for u in found] == [
        ("Resetting", "Resetting"),
        ("Hold the power button for ten seconds.", "Resetting"),
        ("model | X200", "Resetting"),
        ("Pairing", "Pairing"),
        ("Press pair twice.", "Pairing"),
    ]


def test_rtf_markup_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "notes.rtf"
    path.write_text(RTF, encoding="ascii")

    found = units(path)

    assert detect_document_type(path, "notes.rtf") == DocumentType.RTF
    assert [u.text.strip() for u in found] == [
        "Reset the X200 by holding the button.",
        "Café mode is the second.",
    ]


def test_docx_headers_footers_and_nested_tables_are_kept(tmp_path: Path) -> None:
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "ACME confidential"
    document.sections[0].footer.paragraphs[0].text = "Printed in Bremen"
    document.add_paragraph("Body text.")
    outer = document.add_table(rows=1, cols=2)
    outer.cell(0, 0).text = "outer"
    outer.cell(0, 1).add_table(rows=1, cols=1).cell(0, 0).text = "inner value"
    path = tmp_path / "report.docx"
    document.save(str(path))

    texts = [u.text for u in units(path)]

    assert texts[0] == "ACME confidential"
    assert texts[-1] == "Printed in Bremen"
    assert any("outer" in t and "inner value" in t for t in texts)


def test_a_chunk_spanning_headings_names_every_one() -> None:
    pieces = [
        TextUnit("First part.", {"section": "Intro"}),
        TextUnit("Second part.", {"section": "Setup"}),
        TextUnit("Third part.", {"section": "Setup"}),
    ]

    (chunk,) = chunk_units(pieces, TextSplitter(chunk_size=500, chunk_overlap=0))

    assert chunk.metadata["section"] == "Intro"
    assert chunk.metadata["sections"] == ["Intro", "Setup"]


async def test_new_formats_upload_and_are_searchable(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    deck = write_pptx(tmp_path / "deck.pptx")
    odt = write_odt(tmp_path / "manual.odt")

    answers = [
        await upload(client, deck.read_bytes(), "deck.pptx", session_id="formats"),
        await upload(client, odt.read_bytes(), "manual.odt", session_id="formats"),
        await upload(client, RTF, "notes.rtf", session_id="formats"),
    ]
    found = await client.post(
        "/api/collections/formats/search",
        json={"query": "power button", "mode": "keyword", "k": 10},
    )

    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert {r["filename"] for r in found.json()["results"]} >= {"deck.pptx", "manual.odt"}
