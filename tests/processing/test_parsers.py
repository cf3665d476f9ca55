import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from app.core.errors import UnprocessableContent
from app.processing.detection import detect_document_type
from app.processing.parsers import ParseLimits, parse_document
from app.processing.units import DocumentType, TextUnit
from tests.support.files import (
    Heading,
    write_docx,
    write_encrypted_pdf,
    write_pdf,
    write_xlsx,
    write_zip_bomb,
)


def parse(path: Path, document_type: DocumentType) -> list[TextUnit]:
    return list(parse_document(path, document_type))


def parse_text(tmp_path: Path, content: str | bytes, document_type: DocumentType) -> list[TextUnit]:
    path = tmp_path / "upload"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return parse(path, document_type)


def unprocessable(path: Path, document_type: DocumentType, **limits: int) -> str:
    with pytest.raises(UnprocessableContent) as raised:
        list(parse_document(path, document_type, ParseLimits(**limits)))
    assert raised.value.status_code == 422
    return raised.value.message


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_gives_one_unit_per_page_with_its_number(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "a.pdf", ["First page, café.", "", "Third page."])

    units = parse(path, DocumentType.PDF)

    assert [unit.metadata for unit in units] == [{"page": 1}, {"page": 3}]
    assert units[0].text.strip() == "First page, café."
    assert units[1].text.strip() == "Third page."


def test_pdf_with_a_user_password_is_refused_as_encrypted(tmp_path: Path) -> None:
    path = write_encrypted_pdf(tmp_path / "a.pdf", "Secret text", user_password="secret")

    assert unprocessable(path, DocumentType.PDF) == (
        "the PDF is encrypted (password-protected); upload a decrypted copy"
    )


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    path = write_encrypted_pdf(tmp_path / "a.pdf", "Restricted but readable", user_password="")

    units = parse(path, DocumentType.PDF)

    assert [(unit.text.strip(), unit.metadata) for unit in units] == [
        ("Restricted but readable", {"page": 1})
    ]


def test_truncated_pdf_is_refused_as_damaged(tmp_path: Path) -> None:
    whole = write_pdf(tmp_path / "whole.pdf", ["Some text"] * 3).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(whole[: len(whole) // 2])

    message = unprocessable(path, DocumentType.PDF)

    assert message.startswith("the PDF could not be read: it looks damaged (")
    assert str(path) not in message


def test_pdf_errors_keep_the_library_error_as_cause(tmp_path: Path) -> None:
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"garbage " * 50)

    with pytest.raises(UnprocessableContent) as raised:
        parse(path, DocumentType.PDF)

    assert raised.value.message.startswith("the PDF could not be read: it looks damaged (")
    assert raised.value.__cause__ is not None


# --- DOCX --------------------------------------------------------------------------------------


def test_docx_gives_paragraphs_and_tables_in_order_under_their_headings(tmp_path: Path) -> None:
    path = write_docx(
        tmp_path / "a.docx",
        [
            "Preamble before any heading.",
            Heading("Prices", level=1),
            "The table below lists prices.",
            [["Item", "Price"], ["Tea", "2.50"], ["", ""], ["Cake", "3.00"]],
            Heading("Notes", level=2),
            "   ",
            "Prices include VAT.",
        ],
    )

    units = parse(path, DocumentType.DOCX)

    assert [(unit.text, unit.metadata) for unit in units] == [
        ("Preamble before any heading.", {}),
        ("Prices", {"section": "Prices"}),
        ("The table below lists prices.", {"section": "Prices"}),
        ("Item | Price\nTea | 2.50\nCake | 3.00", {"section": "Prices"}),
        ("Notes", {"section": "Notes"}),
        ("Prices include VAT.", {"section": "Notes"}),
    ]


def test_docx_title_style_starts_a_section(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "a.docx", [Heading("Annual report", level=0), "Body text."])

    units = parse(path, DocumentType.DOCX)

    assert units[-1] == TextUnit("Body text.", {"section": "Annual report"})


def test_docx_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = write_zip_bomb(tmp_path / "bomb.docx", "word/document.xml", 300 * 1024 * 1024)
    assert path.stat().st_size < 1024 * 1024
    assert detect_document_type(path, "bomb.docx") == DocumentType.DOCX

    assert unprocessable(path, DocumentType.DOCX) == (
        "the DOCX expands to more than 200 MB when unpacked (300 MB); "
        "it is refused as a possible ZIP bomb"
    )


def test_xlsx_zip_bomb_is_refused_too(tmp_path: Path) -> None:
    path = write_zip_bomb(tmp_path / "bomb.xlsx", "xl/workbook.xml", 3 * 1024 * 1024)

    assert unprocessable(path, DocumentType.XLSX, max_unpacked_bytes=1024 * 1024) == (
        "the XLSX expands to more than 1 MB when unpacked (3 MB); "
        "it is refused as a possible ZIP bomb"
    )


def test_docx_with_broken_xml_is_refused_as_damaged(tmp_path: Path) -> None:
    original = write_docx(tmp_path / "a.docx", ["Fine text."])
    path = tmp_path / "broken.docx"
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            broken = info.filename == "word/document.xml"
            target.writestr(info, b"<w:document><oops" if broken else source.read(info))

    assert unprocessable(path, DocumentType.DOCX).startswith(
        "the DOCX could not be read: it looks damaged ("
    )


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_rows_become_column_value_lines(tmp_path: Path) -> None:
    content = 'name,city,note\nAda,London,\nAlan,,"two\nlines"\n,,\nGrace,NA,007\n'

    units = parse_text(tmp_path, content, DocumentType.CSV)

    assert [(unit.text, unit.metadata) for unit in units] == [
        ("name: Ada\ncity: London", {"rows": [1, 1]}),
        ("name: Alan\nnote: two\nlines", {"rows": [2, 2]}),
        ("name: Grace\ncity: NA\nnote: 007", {"rows": [4, 4]}),
    ]


def test_csv_in_cp1252_is_decoded(tmp_path: Path) -> None:
    content = "Produit;Prix\nCafé crème;2,50 €\nThé;1,80 €\n".encode("cp1252")

    units = parse_text(tmp_path, content, DocumentType.CSV)

    assert [unit.text for unit in units] == [
        "Produit: Café crème\nPrix: 2,50 €",
        "Produit: Thé\nPrix: 1,80 €",
    ]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    content = "\n".join(delimiter.join(row) for row in [["a", "b"], ["1, 5", "2"], ["3", "4"]])

    units = parse_text(tmp_path, content + "\n", DocumentType.CSV)

    assert [unit.text for unit in units] == ["a: 1, 5\nb: 2", "a: 3\nb: 4"]


def test_csv_blank_header_cells_are_named_by_column_number(tmp_path: Path) -> None:
    units = parse_text(tmp_path, "id,,kind\n1,x,y\n", DocumentType.CSV)

    assert units[0].text == "id: 1\ncolumn 2: x\nkind: y"


def test_csv_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    header = ",".join(f"c{index}" for index in range(51))
    path = tmp_path / "wide.csv"
    path.write_text(header + "\n" + ",".join("1" * 51) + "\n")

    assert unprocessable(path, DocumentType.CSV, max_csv_columns=50) == (
        "the CSV file has 51 columns; at most 50 are supported"
    )


def test_csv_is_streamed_and_fails_only_where_it_breaks(tmp_path: Path) -> None:
    good_rows = "".join(f"{index},row number {index}\n" for index in range(5000))
    path = tmp_path / "late.csv"
    path.write_bytes(b"id,text\n" + good_rows.encode() + b"5000,caf\xe9\n")

    units = parse_document(path, DocumentType.CSV)

    assert next(units) == TextUnit("id: 0\ntext: row number 0", {"rows": [1, 1]})
    with pytest.raises(UnprocessableContent) as raised:
        list(units)
    assert raised.value.message == (
        "the CSV file could not be read: it is not valid utf-8 text throughout"
    )


def test_csv_with_only_a_header_gives_no_units(tmp_path: Path) -> None:
    assert parse_text(tmp_path, "a,b,c\n", DocumentType.CSV) == []


# --- XLSX --------------------------------------------------------------------------------------


def test_xlsx_gives_rows_of_every_sheet_under_its_header(tmp_path: Path) -> None:
    # Stored under a name without extension, as uploads are: openpyxl must still read it.
    path = write_xlsx(
        tmp_path / "book.xlsx",
        {
            "People": [[None, None], ["name", "born"], ["Ada", datetime(1815, 12, 10)]],
            "Numbers": [["n", None, "x"], [1, "one", 2.5], [None, None, None], [3.0, "three", 7]],
            "Empty": [],
        },
    ).rename(tmp_path / "upload")

    units = parse(path, DocumentType.XLSX)

    assert [(unit.text, unit.metadata) for unit in units] == [
        ("name: Ada\nborn: 1815-12-10", {"sheet": "People", "rows": [1, 1]}),
        ("n: 1\ncolumn 2: one\nx: 2.5", {"sheet": "Numbers", "rows": [1, 1]}),
        ("n: 3\ncolumn 2: three\nx: 7", {"sheet": "Numbers", "rows": [3, 3]}),
    ]


def test_corrupt_xlsx_is_refused_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")

    assert unprocessable(path, DocumentType.XLSX).startswith(
        "the XLSX could not be read: it looks damaged ("
    )


# --- Text and Markdown -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1", "utf-8-sig"])
def test_text_is_decoded_and_split_into_paragraphs(tmp_path: Path, encoding: str) -> None:
    content = "Première ligne\nsuite du paragraphe.\n\n\n  \nDeuxième paragraphe, très court.\n"

    units = parse_text(tmp_path, content.encode(encoding), DocumentType.TEXT)

    assert units == [
        TextUnit("Première ligne\nsuite du paragraphe."),
        TextUnit("Deuxième paragraphe, très court."),
    ]


def test_markdown_headings_start_sections(tmp_path: Path) -> None:
    content = (
        "Intro text.\n"
        "# Install ##\n"
        "Run this:\n\n"
        "```sh\n# not a heading\n\nmake install\n```\n"
        "#hashtag is not a heading either\n\n"
        "### Configure\n\n"
        "Edit the file.\n"
    )

    units = parse_text(tmp_path, content, DocumentType.MARKDOWN)

    assert [(unit.text, unit.metadata) for unit in units] == [
        ("Intro text.", {}),
        ("Install", {"section": "Install"}),
        ("Run this:", {"section": "Install"}),
        (
            "```sh\n# not a heading\n\nmake install\n```\n#hashtag is not a heading either",
            {"section": "Install"},
        ),
        ("Configure", {"section": "Configure"}),
        ("Edit the file.", {"section": "Configure"}),
    ]


def test_text_that_is_not_decodable_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"binary\x00data \xe9\xff")

    assert unprocessable(path, DocumentType.TEXT) == (
        "the text file could not be read: it is not valid utf-8 text throughout"
    )


# --- HTML --------------------------------------------------------------------------------------


def test_html_gives_visible_blocks_under_their_headings(tmp_path: Path) -> None:
    content = """<!DOCTYPE html>
    <html><head><title>Hidden title</title><style>p { color: red }</style></head>
    <body>
      <script>var secret = "hidden";</script>
      <noscript>Enable JavaScript</noscript>
      <nav><a href="/">Home</a></nav>
      <h1>Guide <small>v2</small></h1>
      <p>First   paragraph with <b>bold</b>
         and a <a href="#">link</a>.</p>
      <div>Line one<br>Line two</div>
      <!-- a comment -->
      <h2>Table</h2>
      <table><tr><th>Name</th><th>Age</th></tr><tr><td>Ada</td><td>36</td></tr></table>
      <svg><text>drawing text</text></svg>
      <pre>  keep   this
  spacing</pre>
    </body></html>"""

    units = parse_text(tmp_path, content, DocumentType.HTML)

    assert [(unit.text, unit.metadata) for unit in units] == [
        ("Home", {}),
        ("Guide v2", {"section": "Guide v2"}),
        ("First paragraph with bold and a link.", {"section": "Guide v2"}),
        ("Line one\nLine two", {"section": "Guide v2"}),
        ("Table", {"section": "Table"}),
        ("Name | Age", {"section": "Table"}),
        ("Ada | 36", {"section": "Table"}),
        ("keep   this\nspacing", {"section": "Table"}),
    ]


def test_html_honours_its_declared_charset(tmp_path: Path) -> None:
    content = '<html><head><meta charset="windows-1252"></head><body><p>Café crème</p></body>'

    units = parse_text(tmp_path, content.encode("cp1252"), DocumentType.HTML)

    assert units == [TextUnit("Café crème")]


def test_pdf_with_more_pages_than_the_limit_is_refused(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "a.pdf", ["one", "two", "three"])

    assert unprocessable(path, DocumentType.PDF, max_pdf_pages=2) == (
        "the PDF has 3 pages; at most 2 are supported"
    )


def test_csv_width_is_counted_before_pandas_reads_the_header(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(b"c," * 1_000_000 + b"\n" + b"1," * 1_000_000 + b"\n")

    assert unprocessable(path, DocumentType.CSV) == (
        "the CSV file has 1000001 columns; at most 10000 are supported"
    )
