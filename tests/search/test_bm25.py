"""Keyword search ranks by BM25 with each collection's own statistics, kept exact by the
index's triggers through uploads, replacements, deletes and concurrent writers."""

import asyncio
import math
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from app.document.partitions import drop_orphaned_partitions
from tests.support.db import create_database, wait_until
from tests.support.fake_openai import FakeOpenAI, embedding_calls
from tests.support.invariants import settled_violations, violations
from tests.support.servers import serve_app
from tests.support.uploads import upload

TEXTS = {
    "engines.txt": "The rocket engine burns kerosene. The engine is cooled by kerosene.",
    "baking.txt": "Sourdough bread needs flour, water, salt and a starter culture.",
    "rivers.txt": "The river flows north; an engine on the river boat burns diesel.",
}
QUESTION = "which engine burns kerosene"


async def search(client: httpx.AsyncClient, collection: str, query: str, **body: Any) -> list:
    response = await client.post(
        f"/api/collections/{collection}/search",
        json={"query": query, "mode": "keyword", "k": 10, **body},
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def expected_scores(
    db: AsyncConnection, collection: str, query: str, k1: float = 1.2, b: float = 0.75
) -> dict[str, float]:
    """BM25 (Lucene's IDF) computed here from each chunk's words, as PostgreSQL splits them."""
    rows = (
        await db.execute(
            text(
                "SELECT d.filename, w.lexeme, cardinality(w.positions) AS tf "
                "FROM chunks c JOIN documents d ON d.id = c.document_id "
                "CROSS JOIN LATERAL unnest(c.text_search) w WHERE c.collection_id = :c"
            ),
            {"c": collection},
        )
    ).all()
    words = set(
        await db.scalar(text("SELECT tsvector_to_array(to_tsvector('english', :q))"), {"q": query})
    )
    await db.commit()
    chunks: dict[str, dict[str, int]] = {}
    for filename, lexeme, tf in rows:
        chunks.setdefault(filename, {})[lexeme] = tf
    lengths = {name: sum(terms.values()) for name, terms in chunks.items()}
    average = sum(lengths.values()) / len(chunks)
    scores = {}
    for name, terms in chunks.items():
        score = 0.0
        for word in words & terms.keys():
            df = sum(1 for other in chunks.values() if word in other)
            idf = math.log(1 + (len(chunks) - df + 0.5) / (df + 0.5))
            tf = terms[word]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[name] / average))
        if score:
            scores[name] = score
    return scores


async def fill(client: httpx.AsyncClient, collection: str, texts: dict[str, str]) -> None:
    for name, content in texts.items():
        assert (await upload(client, content, name, session_id=collection)).status_code == 200


def by_name(results: list[dict[str, Any]]) -> dict[str, float]:
    return {result["filename"]: result["score"] for result in results}


# Both ways a question is scored: exhaustively (its words have few postings, as here)
# and from each word's best postings (a budget of 0 postings).
@pytest.mark.parametrize("exact_postings", [25_000, 0], ids=["exhaustive", "best-postings"])
async def test_keyword_scores_are_bm25_with_the_collections_statistics(
    settings: Settings, db: AsyncConnection, exact_postings: int
) -> None:
    tuned = settings.model_copy(update={"bm25_exact_postings": exact_postings})
    async with serve_app(tuned) as client:
        await fill(client, "mix", TEXTS)
        results = await search(client, "mix", QUESTION)

    expected = await expected_scores(db, "mix", QUESTION)
    assert [r["filename"] for r in results] == sorted(expected, key=expected.__getitem__)[::-1]
    assert by_name(results) == pytest.approx(expected, rel=1e-5)
    # "kerosene" is in one chunk, "engine" in two: the rare word weighs more.
    assert results[0]["filename"] == "engines.txt"
    assert await settled_violations(db) == {}


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
async def test_a_search_that_finds_no_postings_table_scores_the_chunks_words(
    client: httpx.AsyncClient, db: AsyncConnection, mode: str
) -> None:
    """A search planned just before the keyword build's commit has no table of postings in
    its plan, and runs after the commit cleared `deferred` (CI saw it: an empty answer).
    The search looks for the table before it plans, and without one scores the chunks from
    their words. Here the table is detached, which is what such a plan sees."""
    await fill(client, "mix", TEXTS)
    await wait_until(
        db,
        "SELECT NOT deferred FROM keyword_collections WHERE collection_id = 'mix'",
        "the keyword build of mix",
    )
    postings_table = await db.scalar(
        text(
            "SELECT keyword_partition_name(postings_key) FROM keyword_collections "
            "WHERE collection_id = 'mix'"
        )
    )
    await db.execute(text(f"ALTER TABLE keyword_postings DETACH PARTITION {postings_table}"))
    await db.commit()

    results = await search(client, "mix", QUESTION, mode=mode)

    expected = await expected_scores(db, "mix", QUESTION)
    if mode == "keyword":
        assert by_name(results) == pytest.approx(expected, rel=1e-5)
    else:
        assert {r["filename"] for r in results if r["keyword_rank"] is not None} == set(expected)


async def test_k1_and_b_come_from_settings(settings: Settings, db: AsyncConnection) -> None:
    tuned = settings.model_copy(update={"bm25_k1": 2.0, "bm25_b": 0.2})
    async with serve_app(tuned) as client:
        await fill(client, "mix", TEXTS)
        results = await search(client, "mix", QUESTION)

    assert by_name(results) == pytest.approx(
        await expected_scores(db, "mix", QUESTION, k1=2.0, b=0.2), rel=1e-5
    )


async def test_one_collections_documents_never_change_anothers_scores(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await fill(client, "mix", TEXTS)
    before = by_name(await search(client, "mix", QUESTION))
    # Another collection full of "kerosene" would make the word common, were IDF global.
    await fill(client, "fuel", {f"fuel-{n}.txt": f"kerosene supply {n}" for n in range(6)})

    after = by_name(await search(client, "mix", QUESTION))

    assert after == pytest.approx(before, rel=1e-9)
    assert (await search(client, "fuel", "kerosene"))[0]["score"] < before["engines.txt"]
    assert await settled_violations(db) == {}


async def test_deleting_and_replacing_documents_keeps_the_statistics_exact(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await fill(client, "mix", TEXTS)
    before = by_name(await search(client, "mix", QUESTION))
    await fill(client, "mix", {"extra.txt": "kerosene kerosene kerosene lamps"})
    with_extra = by_name(await search(client, "mix", QUESTION))
    expected_with_extra = await expected_scores(db, "mix", QUESTION)
    listed = await client.get("/api/collections/mix/documents")
    extra = next(d for d in listed.json()["data"] if d["filename"] == "extra.txt")

    deleted = await client.delete(f"/api/collections/mix/documents/{extra['id']}")
    after_delete = by_name(await search(client, "mix", QUESTION))
    await fill(client, "mix", {"rivers.txt": "A quiet river with no boats at all."})
    replaced = by_name(await search(client, "mix", QUESTION))

    assert with_extra == pytest.approx(expected_with_extra, rel=1e-5)
    assert with_extra["engines.txt"] != pytest.approx(before["engines.txt"])
    assert deleted.status_code == 204
    assert after_delete == pytest.approx(before, rel=1e-9)
    assert "rivers.txt" not in replaced
    assert replaced == pytest.approx(await expected_scores(db, "mix", QUESTION), rel=1e-5)
    assert await settled_violations(db) == {}


async def test_a_deleted_collection_leaves_no_keyword_rows(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await fill(client, "mix", TEXTS)
    await fill(client, "other", {"keep.txt": "kerosene stays here"})
    # A first fill's postings are built just after its upload answers (migration 0015).
    await wait_until(
        db,
        "SELECT NOT deferred FROM keyword_collections WHERE collection_id = 'other'",
        "the keyword build of other",
    )

    assert (await client.delete("/api/collections/mix")).status_code == 204
    # The delete takes the collection's statistics row, and with it the key of its postings'
    # table (migration 0017), which the workers' sweep then drops whole.
    reachable = (
        "SELECT count(*) FROM keyword_postings p JOIN keyword_collections k USING (postings_key)"
    )
    left = (
        await db.execute(
            text(
                "SELECT (SELECT count(*) FROM keyword_collections WHERE collection_id = 'mix'), "
                "(SELECT count(*) FROM keyword_terms WHERE collection_id = 'mix'), "
                f"({reachable})"
            )
        )
    ).one()
    await db.commit()
    swept = await drop_orphaned_partitions(db.engine)
    after_sweep = await db.scalar(text("SELECT count(*) FROM keyword_postings"))

    assert tuple(left) == (0, 0, 2), "only other's postings remain: kerosen, stay (here: stop word)"
    assert len(swept) == 2  # the collection's tables of chunks and of postings
    assert after_sweep == 2
    assert await settled_violations(db) == {}


async def test_concurrent_uploads_into_one_collection_keep_the_index_exact(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    texts = {f"doc-{n}.txt": f"engine report {n}: kerosene pump {n % 3} valve" for n in range(16)}

    answers = await asyncio.gather(
        *(upload(client, content, name, session_id="busy") for name, content in texts.items())
    )

    assert [answer.status_code for answer in answers] == [200] * 16
    assert await settled_violations(db) == {}
    chunks = await db.scalar(
        text("SELECT chunk_count FROM keyword_collections WHERE collection_id = 'busy'")
    )
    assert chunks == 16


async def test_phrases_and_exclusions_filter_bm25_results(client: httpx.AsyncClient) -> None:
    await fill(client, "mix", TEXTS)

    excluded = await search(client, "mix", "engine burns -kerosene")
    phrase = await search(client, "mix", '"rocket engine"')

    assert [r["filename"] for r in excluded] == ["rivers.txt"]
    assert [r["filename"] for r in phrase] == ["engines.txt"]


async def test_a_selective_filter_still_gets_k_results_when_candidates_run_out(
    settings: Settings, db: AsyncConnection
) -> None:
    """With one posting read per word, the best candidates are all filtered out; the search
    then scores every chunk that passes the filter, and hybrid does the same."""
    # No exhaustive scoring of small questions: the best postings are read.
    shallow = settings.model_copy(update={"bm25_depth": 1, "bm25_exact_postings": 0})
    common = {f"common-{n}.txt": "kerosene engine " * (n + 3) for n in range(5)}
    rare = {f"tagged-{n}.txt": f"kerosene engine notes {n}" for n in range(3)}
    async with serve_app(shallow) as client:
        await fill(client, "mix", common)
        for name, content in rare.items():
            await upload(client, content, name, session_id="mix", metadata='{"tag": "x"}')
        body = {"k": 3, "filters": {"type": "eq", "key": "tag", "value": "x"}}
        keyword = await search(client, "mix", "kerosene engine", **body)
        hybrid = await search(client, "mix", "kerosene engine", **body, mode="hybrid")
        unfiltered = await search(client, "mix", "kerosene engine", k=3)

    assert sorted(r["filename"] for r in keyword) == sorted(rare)
    assert sorted(r["filename"] for r in hybrid) == sorted(rare)
    # Depth 1 reads one posting per word, and both words' best is the same chunk.
    assert [r["filename"] for r in unfiltered] == ["common-4.txt"]


async def test_exact_bm25_scores_every_chunk_holding_a_word(
    settings: Settings, db: AsyncConnection
) -> None:
    """Two postings per word miss chunks; a question with few postings (16 here) is
    scored exhaustively below the budget, and always with RAGSTORE_BM25_EXACT."""
    texts = {f"doc-{n}.txt": "kerosene " * (n + 1) + f"engine part {n}" for n in range(8)}
    shallow = settings.model_copy(update={"bm25_depth": 2, "bm25_exact_postings": 15})
    async with serve_app(shallow) as client:
        await fill(client, "mix", texts)
        approximate = await search(client, "mix", "kerosene engine")
    small = settings.model_copy(update={"bm25_depth": 2, "bm25_exact_postings": 16})
    async with serve_app(small) as client:
        within_budget = await search(client, "mix", "kerosene engine")
    async with serve_app(settings.model_copy(update={"bm25_exact": True})) as client:
        exact = await search(client, "mix", "kerosene engine")

    expected = await expected_scores(db, "mix", "kerosene engine")
    assert len(approximate) <= 4
    assert by_name(within_budget) == pytest.approx(expected)
    assert by_name(exact) == pytest.approx(expected)
    assert len(exact) == 8


async def test_chunk_text_changed_by_sql_is_reindexed(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    """Operators may fix a chunk's text by hand; metadata updates leave the index alone."""
    await fill(client, "mix", TEXTS)
    await db.execute(
        text("UPDATE chunks SET text = 'bread and kerosene' WHERE metadata->>'filename' = :f"),
        {"f": "baking.txt"},
    )
    await db.execute(text("UPDATE chunks SET metadata = metadata || '{\"x\": 1}'"))
    await db.commit()

    results = await search(client, "mix", "kerosene bread")

    assert results[0]["filename"] == "baking.txt"
    assert await settled_violations(db) == {}


async def test_the_invariants_catch_a_broken_keyword_index(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    await fill(client, "mix", TEXTS)
    await db.execute(
        text("DELETE FROM keyword_postings WHERE ctid = (SELECT min(ctid) FROM keyword_postings)")
    )
    await db.execute(text("UPDATE keyword_terms SET document_frequency = document_frequency + 1"))
    await db.execute(text("UPDATE keyword_collections SET total_length = total_length + 1"))
    await db.commit()

    broken = await violations(db)

    assert {rule.split(" ")[0] + " " + rule.split(" ")[1] for rule in broken} == {
        "collections whose",
        "BM25 words",
        "BM25 postings",
    }


async def test_the_text_search_language_setting_applies_to_bm25(
    settings: Settings, postgres: EmbeddedPostgres
) -> None:
    """A database built for German stems German words, in the index and in questions."""
    name = create_database(postgres)
    german = settings.model_copy(
        update={"text_search_config": "german", "database_url": postgres.url(name)}
    )
    try:
        await asyncio.to_thread(migrate.upgrade, german, german.database_url)
        async with serve_app(german) as client:
            await fill(client, "de", {"haus.txt": "Die Häuser stehen am Fluss.", "x.txt": "Brot"})
            found = await search(client, "de", "Haus")
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")

    assert [r["filename"] for r in found] == ["haus.txt"]


async def test_a_cached_copy_into_another_collection_is_indexed_there(
    client: httpx.AsyncClient, db: AsyncConnection, upstream: FakeOpenAI
) -> None:
    await fill(client, "mix", TEXTS)
    calls = embedding_calls(upstream)

    await fill(client, "copy", {"engines.txt": TEXTS["engines.txt"]})

    assert embedding_calls(upstream) == calls, "copied from the cache"
    copied = await search(client, "copy", QUESTION)
    assert by_name(copied) == pytest.approx(await expected_scores(db, "copy", QUESTION))
    assert await settled_violations(db) == {}
