"""Search modes on real text: a slice of the Cranfield collection with the local model."""

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.core.config import Settings
from app.runtime import Runtime
from app.search.service import SearchHit, SearchQuery

CRANFIELD = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cranfield"
if not CRANFIELD.is_dir():
    pytest.skip(
        "../shared/corpus not found: the Cranfield tests need the shared folder beside the clone",
        allow_module_level=True,
    )
SLICE = 200


def load_abstracts() -> list[str]:
    with (CRANFIELD / "corpus.jsonl").open() as lines:
        documents = [json.loads(line) for line in lines][:SLICE]
    return [f"{d['title']}. {d['text']}".strip() for d in documents]


def rare_word(texts: list[str]) -> tuple[str, int]:
    """A long word that appears in exactly one abstract, and that abstract's index."""
    counts = Counter(word for text in texts for word in set(re.findall(r"[a-z]{9,}", text)))
    for index, text in enumerate(texts):
        for word in sorted(set(re.findall(r"[a-z]{9,}", text))):
            if counts[word] == 1:
                return word, index
    raise AssertionError("no rare word in the slice")


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    local = settings.model_copy(
        update={"embedding_provider": "local", "embedding_model": "all-MiniLM-L6-v2"}
    )
    opened = await Runtime.open(local)
    yield opened
    await opened.close()


async def search(runtime: Runtime, query: str, mode: str, k: int = 5) -> list[SearchHit]:
    async with runtime.database.session() as session:
        search = SearchQuery("cranfield", query, k=k, mode=mode)  # type: ignore[arg-type]
        return await runtime.search.search(session, search)


async def test_modes_on_cranfield(runtime: Runtime) -> None:
    texts = await asyncio.to_thread(load_abstracts)
    await runtime.ingestion.insert_texts("cranfield", texts)
    word, owner = rare_word(texts)

    keyword = await search(runtime, word, "keyword")
    hybrid = await search(runtime, word, "hybrid", k=3)
    # The opening of the abstract finds the whole abstract by meaning.
    vector = await search(runtime, texts[owner][:200], "vector", k=1)

    assert [hit.text for hit in keyword] == [texts[owner]]
    assert texts[owner] in [hit.text for hit in hybrid]
    assert vector[0].text == texts[owner]
    assert vector[0].similarity is not None and vector[0].similarity > 0.8
