"""Benchmark 7: retrieval quality on the Cranfield collection with the local model.

1,400 aeronautics abstracts, 225 queries, 1,612 relevance judgments: nDCG@10
and recall@100 for vector, keyword and hybrid search, side by side.

    python -m bench.retrieval_quality [--queries 225] [--documents 1400]
"""

import argparse
import asyncio
import json
import math
from collections import defaultdict

from app.runtime import Runtime
from app.search.service import SearchQuery
from bench.common import bar_chart, database, report, timer
from bench.corpus import CRANFIELD

MODES = ("vector", "keyword", "hybrid")


def load() -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, set[str]]]:
    with (CRANFIELD / "corpus.jsonl").open() as lines:
        documents = [json.loads(line) for line in lines]
    with (CRANFIELD / "queries.jsonl").open() as lines:
        queries = [json.loads(line) for line in lines]
    relevant: dict[str, set[str]] = defaultdict(set)
    for line in (CRANFIELD / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, document_id, _ = line.split("\t")
        relevant[query_id].add(document_id)
    corpus = [(d["_id"], f"{d['title']}. {d['text']}".strip()) for d in documents]
    asked = [(q["_id"], q["text"]) for q in queries if q["_id"] in relevant]
    return corpus, asked, relevant


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    gain = sum(1 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]) if doc in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(relevant))))
    return gain / ideal if ideal else 0.0


def recall_at_100(ranked: list[str], relevant: set[str]) -> float:
    return len(set(ranked[:100]) & relevant) / len(relevant)


async def run(query_limit: int, document_limit: int) -> None:
    corpus, queries, relevant = load()
    corpus = corpus[:document_limit]
    kept = {document_id for document_id, _ in corpus}
    queries = [q for q in queries if relevant[q[0]] & kept][:query_limit]
    id_of_text = {text: document_id for document_id, text in corpus}
    with database() as (_, settings):
        runtime = await Runtime.open(settings)
        with timer() as embed_seconds:
            await runtime.ingestion.insert_texts("cranfield", [text for _, text in corpus])
        scores: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        for query_id, text in queries:
            async with runtime.database.session() as session:
                for mode in MODES:
                    query = SearchQuery("cranfield", text, k=100, mode=mode)  # type: ignore[arg-type]
                    hits = await runtime.search.search(session, query)
                    ranked = [id_of_text[hit.text] for hit in hits]
                    scores[mode].append(
                        (
                            ndcg_at_10(ranked, relevant[query_id]),
                            recall_at_100(ranked, relevant[query_id]),
                        )
                    )
        await runtime.close()
    rows = [
        [
            mode,
            sum(n for n, _ in scores[mode]) / len(queries),
            sum(r for _, r in scores[mode]) / len(queries),
        ]
        for mode in MODES
    ]
    best_single = max(rows[0][1], rows[1][1])
    report(
        "retrieval_quality",
        f"Cranfield, {len(corpus):,} abstracts, {len(queries)} queries, all-MiniLM-L6-v2: "
        f"hybrid nDCG@10 at {rows[2][1] / best_single:.2f}x the better single mode",
        ["mode", "nDCG@10", "recall@100"],
        rows,
        {
            "documents": len(corpus),
            "queries": len(queries),
            "model": settings.embedding_model,
            "embedding_seconds": embed_seconds[0],
            "candidates": settings.search_candidates,
            "rrf_k": settings.rrf_k,
        },
    )
    bar_chart(
        "retrieval_quality",
        f"Cranfield, {len(queries)} queries: quality per search mode",
        ("measure", "score"),
        ["nDCG@10", "recall@100"],
        {row[0]: [row[1], row[2]] for row in rows},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=225)
    parser.add_argument("--documents", type=int, default=1400, help="the first N abstracts")
    arguments = parser.parse_args()
    if not CRANFIELD.is_dir():
        raise SystemExit(f"{CRANFIELD} not found: this benchmark needs ../shared/corpus")
    asyncio.run(run(arguments.queries, arguments.documents))


if __name__ == "__main__":
    main()
