"""Test documents generated on the fly, so no binary fixture lives in the repository."""

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docx
import openpyxl
from fpdf import FPDF
from pypdf import PdfWriter

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
OLE_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1


DocxBlock = str | Heading | Sequence[Sequence[str]]
"""A paragraph, a heading, or a table given as rows of cell texts."""


def write_pdf(path: Path, pages: Sequence[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def write_encrypted_pdf(path: Path, text: str, *, user_password: str) -> Path:
    """An empty `user_password` gives an owner-password-only PDF, which anyone may open."""
    write_pdf(path, [text])
    writer = PdfWriter(clone_from=path)
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
    writer.write(path)
    return path


def write_docx(path: Path, blocks: Sequence[DocxBlock]) -> Path:
    document = docx.Document()
    for block in blocks:
        if isinstance(block, Heading):
            document.add_heading(block.text, level=block.level)
        elif isinstance(block, str):
            document.add_paragraph(block)
        else:
            table = document.add_table(rows=len(block), cols=len(block[0]))
            for row, values in zip(table.rows, block, strict=True):
                for cell, value in zip(row.cells, values, strict=True):
                    cell.text = value
    document.save(str(path))
    return path


def write_xlsx(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    workbook.save(path)
    return path


def write_zip_bomb(path: Path, member: str, unpacked_bytes: int) -> Path:
    """A ZIP of a few hundred kilobytes whose `member` unpacks to `unpacked_bytes` of spaces."""
    block = b" " * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(member, "w", force_zip64=True) as file,
    ):
        for _ in range(unpacked_bytes // len(block)):
            file.write(block)
    return path


def write_ligature_pdf(path: Path, words: Sequence[bytes]) -> Path:
    """A PDF whose font maps byte 0x80 to the glyph `fl` and 0x81 to `fi`, as pdfTeX sets
    them: text extraction then yields the ligature characters U+FB02 and U+FB01. `words`
    are WinAnsi bytes, one line each (b"Ober\\x80\\xe4che" reads "Ober\ufb02\xe4che")."""
    lines = b" ".join(b"(" + word + b") Tj 0 -16 Td" for word in words)
    content = b"BT /F1 12 Tf 72 720 Td " + lines + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding << /Type /Encoding "
        b"/BaseEncoding /WinAnsiEncoding /Differences [128 /fl /fi] >> >>",
    ]
    output = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(output)
    output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    output += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    output += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(output)
    return path
