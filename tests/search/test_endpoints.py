"""Search over real HTTP: modes, filters compiled to SQL, and the errors users can cause."""

import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import scalar
from tests.support.fake_openai import FakeOpenAI
from tests.support.uploads import upload

DOCUMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "airfoil.txt": (
        "Boundary layer transition on a swept airfoil at supersonic speeds.",
        {"year": 2019, "category": "aero", "published": "2019-03-01", "pages": 12},
    ),
    "heat.txt": (
        "Heat transfer in hypersonic flow over a blunt body with a zeppelin shaped nose.",
        {"year": 2020, "category": "thermal", "published": "2020-07-15", "pages": 30},
    ),
    "wing.txt": (
        "Wing flutter analysis of a slender delta wing in transonic flow.",
        {"year": 2021, "category": "aero", "published": "2021-01-20", "pages": 8},
    ),
    "shell.txt": (
        "Buckling of thin cylindrical shells under axial compression.",
        {"year": 2022, "category": "structures", "published": "2022-11-30", "pages": 21},
    ),
    "nozzle.txt": (
        "Nozzle flow separation and heat loads in rocket engines.",
        {"year": 2023, "category": "thermal", "published": "2023-06-05", "pages": 15},
    ),
}


@pytest.fixture
async def collection(client: httpx.AsyncClient) -> str:
    await client.post("/api/collections", json={"name": "papers", "id": "papers"})
    for filename, (text, metadata) in DOCUMENTS.items():
        response = await upload(
            client,
            text,
            filename,
            route="/api/collections/papers/documents",
            metadata=json.dumps(metadata),
        )
        assert response.status_code == 201, response.text
    return "papers"


async def search(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/collections/papers/search", json=body)


async def filenames(client: httpx.AsyncClient, **body: Any) -> set[str]:
    response = await search(client, query="flow", k=100, mode="vector", **body)
    assert response.status_code == 200, response.text
    return {result["filename"] for result in response.json()["results"]}


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
async def test_each_mode_puts_the_matching_chunk_first(
    client: httpx.AsyncClient, collection: str, mode: str
) -> None:
    response = await search(client, query="cylindrical shells buckling", mode=mode)

    results = response.json()["results"]
    assert response.status_code == 200
    assert results[0]["filename"] == "shell.txt"
    assert set(results[0]) == {
        "chunk_id",
        "document_id",
        "filename",
        "text",
        "score",
        "metadata",
        "similarity",
        "keyword_rank",
    }
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    # The parts of the score: each list's own, None where a mode has no such list.
    assert (results[0]["similarity"] is None) == (mode == "keyword")
    assert (results[0]["keyword_rank"] is None) == (mode == "vector")
    if mode == "vector":
        assert results[0]["similarity"] == results[0]["score"]


async def test_a_rare_keyword_is_found_by_keyword_and_hybrid_search(
    client: httpx.AsyncClient, collection: str
) -> None:
    keyword = await search(client, query="zeppelin", mode="keyword")
    hybrid = await search(client, query="zeppelin", mode="hybrid", k=2)

    assert [r["filename"] for r in keyword.json()["results"]] == ["heat.txt"]
    assert "heat.txt" in [r["filename"] for r in hybrid.json()["results"]]


async def test_keyword_search_returns_only_matching_chunks(
    client: httpx.AsyncClient, collection: str
) -> None:
    response = await search(client, query="heat", mode="keyword", k=10)

    assert {r["filename"] for r in response.json()["results"]} == {"heat.txt", "nozzle.txt"}


def expected(predicate: Any) -> set[str]:
    return {name for name, (_, metadata) in DOCUMENTS.items() if predicate(name, metadata)}


@pytest.mark.parametrize(
    ("filters", "predicate"),
    [
        ({"type": "eq", "key": "category", "value": "aero"}, lambda n, m: m["category"] == "aero"),
        ({"type": "ne", "key": "category", "value": "aero"}, lambda n, m: m["category"] != "aero"),
        ({"type": "eq", "key": "year", "value": 2020}, lambda n, m: m["year"] == 2020),
        ({"type": "eq", "key": "year", "value": "2020"}, lambda n, m: False),
        ({"type": "gt", "key": "year", "value": 2021}, lambda n, m: m["year"] > 2021),
        ({"type": "gte", "key": "year", "value": 2021}, lambda n, m: m["year"] >= 2021),
        ({"type": "lt", "key": "pages", "value": 15}, lambda n, m: m["pages"] < 15),
        ({"type": "lte", "key": "pages", "value": 15.0}, lambda n, m: m["pages"] <= 15),
        (
            {"type": "in", "key": "category", "value": ["aero", "structures"]},
            lambda n, m: m["category"] in ("aero", "structures"),
        ),
        (
            {"type": "nin", "key": "category", "value": ["aero", "structures"]},
            lambda n, m: m["category"] not in ("aero", "structures"),
        ),
        (
            {"type": "gte", "key": "published", "value": "2020-07-15"},
            lambda n, m: m["published"] >= "2020-07-15",
        ),
        (
            {"type": "lt", "key": "published", "value": "2021-06-01T00:00:00Z"},
            lambda n, m: m["published"] < "2021-06-01",
        ),
        ({"type": "eq", "key": "filename", "value": "wing.txt"}, lambda n, m: n == "wing.txt"),
        (
            {"type": "nin", "key": "filename", "value": ["wing.txt", "heat.txt"]},
            lambda n, m: n not in ("wing.txt", "heat.txt"),
        ),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "category", "value": "thermal"},
                    {"type": "gte", "key": "year", "value": 2021},
                ],
            },
            lambda n, m: m["category"] == "thermal" and m["year"] >= 2021,
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "category", "value": "structures"},
                    {
                        "type": "and",
                        "filters": [
                            {"type": "lt", "key": "year", "value": 2020},
                            {"type": "eq", "key": "category", "value": "aero"},
                        ],
                    },
                ],
            },
            lambda n, m: (
                m["category"] == "structures" or (m["year"] < 2020 and m["category"] == "aero")
            ),
        ),
        ({"type": "eq", "key": "missing", "value": 1}, lambda n, m: False),
    ],
)
async def test_filters_return_exactly_the_matching_chunks(
    client: httpx.AsyncClient, collection: str, filters: dict[str, Any], predicate: Any
) -> None:
    assert await filenames(client, filters=filters) == expected(predicate)


async def test_document_id_filter(client: httpx.AsyncClient, collection: str) -> None:
    documents = (await client.get("/api/collections/papers/documents")).json()["data"]
    wing = next(d["id"] for d in documents if d["filename"] == "wing.txt")

    found = await filenames(client, filters={"type": "eq", "key": "document_id", "value": wing})

    assert found == {"wing.txt"}


async def test_filters_apply_in_keyword_and_hybrid_modes(
    client: httpx.AsyncClient, collection: str
) -> None:
    only_2023 = {"type": "eq", "key": "year", "value": 2023}

    for mode in ("keyword", "hybrid"):
        response = await search(client, query="heat", mode=mode, k=10, filters=only_2023)
        assert [r["filename"] for r in response.json()["results"]] == ["nozzle.txt"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("category') OR true --", "aero"),
        ("category", "aero' OR '1'='1"),
        ("year", "2020; DROP TABLE chunks; --"),
        ("metadata->>'x'", "y"),
    ],
)
async def test_injection_attempts_are_just_values_that_match_nothing(
    client: httpx.AsyncClient, collection: str, db: AsyncConnection, key: str, value: str
) -> None:
    found = await filenames(client, filters={"type": "eq", "key": key, "value": value})

    assert found == set()
    assert await scalar(db, "SELECT count(*) FROM chunks") == len(DOCUMENTS)


async def test_min_score_drops_weak_results(client: httpx.AsyncClient, collection: str) -> None:
    everything = await search(client, query="cylindrical shells buckling", mode="vector", k=5)
    strong = await search(
        client, query="cylindrical shells buckling", mode="vector", k=5, min_score=0.5
    )

    assert len(everything.json()["results"]) == 5
    assert [r["filename"] for r in strong.json()["results"]] == ["shell.txt"]


async def test_repeated_queries_are_embedded_once(
    client: httpx.AsyncClient, collection: str, upstream: FakeOpenAI
) -> None:
    upstream.requests.clear()

    for _ in range(3):
        await search(client, query="a repeated question", mode="vector")

    assert len(upstream.requests) == 1


async def test_the_session_route_searches_the_same_way(
    client: httpx.AsyncClient, collection: str
) -> None:
    response = await client.post(
        "/api/search", json={"session_id": "papers", "query": "zeppelin", "mode": "keyword"}
    )

    assert [r["filename"] for r in response.json()["results"]] == ["heat.txt"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"query": "x", "k": 0}, "body.k"),
        ({"query": "x", "k": 10**9}, "body.k"),
        ({"query": "x", "mode": "fuzzy"}, "body.mode"),
        ({"query": ""}, "body.query"),
        ({"query": "x", "filters": {"type": "in", "key": "year", "value": 2020}}, "list"),
        ({"query": "x", "filters": {"type": "gt", "key": "year", "value": "soon"}}, "ISO date"),
        ({"query": "x", "filters": {"type": "xor", "filters": []}}, "body.filters"),
        (
            {"query": "x", "filters": {"type": "eq", "key": "document_id", "value": "nope"}},
            "not a UUID",
        ),
        (
            {"query": "x", "filters": {"type": "gt", "key": "filename", "value": 3}},
            "'filename' takes eq, ne, in or nin",
        ),
    ],
)
async def test_invalid_searches_are_422_naming_the_problem(
    client: httpx.AsyncClient, collection: str, body: dict[str, Any], detail: str
) -> None:
    response = await search(client, **body)

    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("aero\x00", "a filter must not contain NUL characters"),
        (float("nan"), "a filter must not contain NaN or Infinity"),
        ("\udab3", "a filter must not contain unpaired surrogates (invalid Unicode)"),
    ],
)
async def test_filter_values_postgresql_cannot_take_are_422(
    client: httpx.AsyncClient, value: object, detail: str
) -> None:
    # Python's json writes NaN and lone surrogates (as escapes), as some clients do.
    body = json.dumps({"query": "x", "filters": {"type": "eq", "key": "category", "value": value}})

    response = await client.post(
        "/api/collections/papers/search", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"] == f"body.filters.eq: Value error, {detail}"


async def test_deeply_nested_filters_are_refused(
    client: httpx.AsyncClient, collection: str
) -> None:
    node: dict[str, Any] = {"type": "eq", "key": "year", "value": 1}
    for _ in range(10):
        node = {"type": "and", "filters": [node]}

    response = await search(client, query="x", filters=node)

    assert response.status_code == 422
    assert "deeper than 8" in response.json()["detail"]


async def test_unknown_collection_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/collections/nope/search", json={"query": "x"})

    assert response.status_code == 404
    assert response.json() == {"detail": "collection 'nope' not found"}


async def test_a_plain_question_finds_chunks_sharing_any_of_its_words(
    client: httpx.AsyncClient, collection: str
) -> None:
    response = await search(
        client, query="which papers study heat or buckling?", mode="keyword", k=10
    )

    found = {r["filename"] for r in response.json()["results"]}
    assert found == {"heat.txt", "nozzle.txt", "shell.txt"}


async def test_web_search_syntax_keeps_its_meaning(
    client: httpx.AsyncClient, collection: str
) -> None:
    without = await search(client, query="heat -nozzle", mode="keyword", k=10)
    phrase = await search(client, query='"delta wing"', mode="keyword", k=10)

    assert [r["filename"] for r in without.json()["results"]] == ["heat.txt"]
    assert [r["filename"] for r in phrase.json()["results"]] == ["wing.txt"]
