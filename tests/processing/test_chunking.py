import itertools
import random
import re
from collections.abc import Iterator

import pytest

from app.processing.chunking import TextSplitter, chunk_units
from app.processing.units import ChunkDraft, TextUnit

WORDS = [
    "the", "of", "retrieval", "vector", "index", "query", "document", "embedding", "chunk",
    "overlap", "paragraph", "sentence", "boundary", "database", "postgres", "similarity",
    "ranking", "hybrid", "keyword", "search", "a", "an", "is", "are", "was", "be",
]  # fmt: skip


def prose(seed: int, paragraphs: int = 6, longest_sentence: int = 25) -> str:
    """Sentences of 3 to `longest_sentence` known words, paragraphs of 2 to 8 sentences."""
    rng = random.Random(seed)
    return "\n\n".join(
        " ".join(
            " ".join(
                rng.choice(WORDS) for _ in range(rng.randint(3, longest_sentence))
            ).capitalize()
            + "."
            for _ in range(rng.randint(2, 8))
        )
        for _ in range(paragraphs)
    )


def sentences(text: str) -> list[str]:
    return re.findall(r"[^.]+\.", text.replace("\n\n", " "))


def test_defaults_are_500_characters_with_50_of_overlap() -> None:
    assert TextSplitter() == TextSplitter(chunk_size=500, chunk_overlap=50)


@pytest.mark.parametrize(
    ("chunk_size", "chunk_overlap", "message"),
    [
        (0, 0, "chunk_size (0) must be positive"),
        (-5, 0, "chunk_size (-5) must be positive"),
        (50, -1, "chunk_overlap (-1) must not be negative"),
        (50, 60, "chunk_overlap (60) must be smaller than chunk_size (50)"),
        (50, 50, "chunk_overlap (50) must be smaller than chunk_size (50)"),
    ],
)
def test_invalid_sizes_are_rejected_with_a_clear_message(
    chunk_size: int, chunk_overlap: int, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        TextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)

    assert str(raised.value) == message


@pytest.mark.parametrize(("chunk_size", "chunk_overlap"), [(60, 15), (120, 30), (500, 50)])
@pytest.mark.parametrize("seed", range(5))
def test_prose_is_cut_between_words_within_the_size(
    chunk_size: int, chunk_overlap: int, seed: int
) -> None:
    text = prose(seed)

    chunks = TextSplitter(chunk_size, chunk_overlap).split_text(text)

    assert chunks
    for chunk in chunks:
        assert 0 < len(chunk) <= chunk_size
        assert chunk == chunk.strip()
        # Whole words at both ends: the first and last tokens are words of the text.
        assert chunk.split()[0].strip(".").lower() in WORDS
        assert chunk.split()[-1].strip(".").lower() in WORDS


@pytest.mark.parametrize("seed", range(5))
def test_consecutive_chunks_overlap_at_a_word_boundary(seed: int) -> None:
    # One paragraph of sentences short enough that the overlap always has room
    # beside the next one (a whole paragraph that fills a chunk leaves it none).
    text = prose(seed, longest_sentence=7).replace("\n\n", " ")
    chunks = TextSplitter(120, 30).split_text(text)

    for previous, current in itertools.pairwise(chunks):
        overlap = next(
            (
                previous[start:]
                for start in range(1, len(previous))
                if previous[start - 1].isspace() and current.startswith(previous[start:])
            ),
            "",
        )
        assert 0 < len(overlap) <= 30, (previous, current)
        # The overlap is made of whole words, and the chunk goes on past it.
        assert current[len(overlap)].isspace()


@pytest.mark.parametrize("seed", range(5))
def test_a_sentence_that_fits_is_never_cut(seed: int) -> None:
    text = prose(seed)

    chunks = TextSplitter(200, 20).split_text(text)

    for sentence in sentences(text):
        if len(sentence.strip()) <= 200:
            assert any(sentence.strip() in chunk for chunk in chunks), sentence


def test_the_overlap_gives_way_to_a_sentence_that_needs_the_room() -> None:
    first = "Short one."
    second = "This second sentence takes up nearly all of the room."

    chunks = TextSplitter(len(second) + 2, 10).split_text(f"{first} {second}")

    assert chunks == [first, second]


def test_paragraphs_are_kept_and_whitespace_collapsed() -> None:
    text = "  First\tparagraph   here.  \r\n\r\n\r\n\n Second  line one\n  line two.  "

    assert TextSplitter(100, 10).split_text(text) == [
        "First paragraph here.\n\nSecond line one\nline two."
    ]


def specified_whitespace(text: str) -> str:
    """What the chunker does to whitespace, as regular expressions."""
    text = re.sub("[\x00\ud800-\udfff]", "", text).replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r" ?\n ?", "\n", re.sub(r"[^\S\n]+", " ", text))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@pytest.mark.parametrize("seed", range(3))
def test_whitespace_of_every_kind_is_collapsed_as_specified(seed: int) -> None:
    rng = random.Random(seed)
    # ASCII and Unicode spaces, line and paragraph separators, NUL, a lone surrogate.
    pieces = [" ", "  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\xa0",
              "\u2003", "\u2028", "\u2029", "\u3000", "\u200b", "\x00", "\ud800", "\n\n\n",
              " \n", "word", "é", "."]  # fmt: skip
    splitter = TextSplitter(chunk_size=10_000, chunk_overlap=0)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        expected = specified_whitespace(text)

        assert splitter.split_text(text) == ([expected] if expected else []), repr(text)


def test_a_word_longer_than_a_chunk_is_cut_by_characters() -> None:
    text = "short words " + "x" * 120 + " more words"

    chunks = TextSplitter(50, 10).split_text(text)

    assert chunks == ["short words", "x" * 50, "x" * 50, "x" * 20 + " more words"]


def test_text_without_words_gives_no_chunks() -> None:
    assert TextSplitter().split_text(" \n\n\t ") == []


def test_small_units_are_packed_and_numbered_from_zero() -> None:
    units = [TextUnit(f"Row {number} value.", {"rows": [number, number]}) for number in range(1, 5)]

    chunks = list(chunk_units(units, TextSplitter(30, 14)))

    assert chunks == [
        ChunkDraft(0, "Row 1 value.\n\nRow 2 value.", {"rows": [1, 2]}),
        ChunkDraft(1, "Row 2 value.\n\nRow 3 value.", {"rows": [2, 3]}),
        ChunkDraft(2, "Row 3 value.\n\nRow 4 value.", {"rows": [3, 4]}),
    ]


def test_chunk_metadata_spans_the_units_it_holds() -> None:
    units = [
        TextUnit("Intro before any heading.", {"page": 1}),
        TextUnit("Methods", {"page": 1, "section": "Methods"}),
        TextUnit("We measured things.", {"page": 2, "section": "Methods"}),
        TextUnit("Results", {"page": 3, "section": "Results"}),
    ]

    [chunk] = chunk_units(units, TextSplitter(500, 50))

    assert chunk.metadata == {
        "page": 1,
        "page_end": 3,
        "section": "Methods",
        "sections": ["Methods", "Results"],
    }
    assert chunk.text == "Intro before any heading.\n\nMethods\n\nWe measured things.\n\nResults"


def test_rows_span_only_the_first_sheet_of_a_chunk() -> None:
    units = [
        TextUnit("a: 1", {"sheet": "One", "rows": [4, 4]}),
        TextUnit("a: 2", {"sheet": "One", "rows": [5, 5]}),
        TextUnit("b: 1", {"sheet": "Two", "rows": [1, 1]}),
    ]

    [chunk] = chunk_units(units, TextSplitter(500, 50))

    assert chunk.metadata == {"sheet": "One", "rows": [4, 5]}


def test_an_oversized_unit_is_split_and_each_part_keeps_its_metadata() -> None:
    page = prose(1, paragraphs=3)
    units = [TextUnit("Cover.", {"page": 1}), TextUnit(page, {"page": 2})]

    chunks = list(chunk_units(units, TextSplitter(100, 20)))

    assert len(chunks) > 3
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert all(len(chunk.text) <= 100 for chunk in chunks)
    assert chunks[0].metadata["page"] == 1
    assert all(chunk.metadata == {"page": 2} for chunk in chunks[2:])


def test_chunk_units_reads_the_stream_only_as_far_as_it_needs() -> None:
    consumed = 0

    def units() -> Iterator[TextUnit]:
        nonlocal consumed
        for number in range(1, 100_001):
            consumed += 1
            yield TextUnit(f"name: row {number}", {"rows": [number, number]})

    chunks = chunk_units(units(), TextSplitter())

    first = next(chunks)
    assert first.index == 0
    assert first.metadata["rows"][0] == 1
    assert consumed < 100

    assert sum(1 for _ in chunks) > 1_000
    assert consumed == 100_000


def test_characters_postgres_cannot_store_are_dropped() -> None:
    splitter = TextSplitter(chunk_size=100, chunk_overlap=0)

    chunks = splitter.split_text("Topo\x00logie und \ud800Geometrie")

    assert chunks == ["Topologie und Geometrie"]
