"""One form for all text: what is stored, and what keyword search looks for."""

import unicodedata


def normalize_text(text: str) -> str:
    """NFKC: compatibility characters become their plain equivalents, so text is found as
    people type it. pdfTeX PDFs set "fl" as the ligature "\ufb02" (so "Ober\ufb02\u00e4che"
    would not match "Oberfl\u00e4che"); full-width letters, superscript digits, "\u00bd"
    and non-breaking spaces fold the same way, and accented letters are composed."""
    return unicodedata.normalize("NFKC", text)
