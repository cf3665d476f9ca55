"""Hybrid scores read as 0-1 (1: first in both the vector and the keyword list), so a
`min_score` means the same whatever the fusion constants."""

import httpx
import pytest

from tests.support.uploads import upload


async def test_hybrid_scores_are_between_0_and_1_and_first_in_both_is_1(
    client: httpx.AsyncClient,
) -> None:
    texts = {
        "engines.txt": "The Falcon rocket engine burns kerosene and liquid oxygen.",
        "baking.txt": "Sourdough bread needs flour, water, salt and a starter.",
        "rivers.txt": "The Rhine flows north through Germany to the North Sea.",
    }
    for name, text in texts.items():
        await upload(client, text, name, session_id="mix")

    answer = await client.post(
        "/api/collections/mix/search",
        json={"query": "The Falcon rocket engine burns kerosene", "mode": "hybrid", "k": 3},
    )
    strict = await client.post(
        "/api/collections/mix/search",
        json={"query": "The Falcon rocket engine burns kerosene", "k": 3, "min_score": 0.9},
    )

    results = answer.json()["results"]
    assert results[0]["filename"] == "engines.txt"
    assert results[0]["score"] == pytest.approx(1.0)
    assert all(0 < result["score"] <= 1 + 1e-9 for result in results)
    assert [r["filename"] for r in strict.json()["results"]] == ["engines.txt"]
