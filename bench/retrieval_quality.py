"""Benchmark 7: retrieval quality on the Cranfield collection with the local model.

1,400 aeronautics abstracts, 225 queries, 1,612 relevance judgments: nDCG@10
and recall@100 for vector, keyword and hybrid search, side by side, and a
reference BM25 (bm25s, Lucene variant, k1 1.2, b 0.75, English stop words and
Snowball stemming) over the same texts, one chunk per abstract.

The fusion settings (RAGSTORE_RRF_K, RAGSTORE_RRF_KEYWORD_WEIGHT) are chosen
on the even-numbered queries from a small grid and reported on the odd ones,
so the hybrid figure is not tuned on the queries it is measured on; that
table is saved as `retrieval_quality_fusion`.

    python -m bench.retrieval_quality [--queries 225] [--documents 1400]
"""

import argparse
import asyncio
import json
import math
from collections import defaultdict

from app.runtime import Runtime
from app.search.service import SearchQuery, SearchService
from bench.common import bar_chart, database, report, timer
from bench.corpus import CRANFIELD

MODES = ("vector", "keyword", "hybrid")
FUSION_GRID = [(rrf_k, weight) for rrf_k in (10, 20, 60) for weight in (0.3, 0.6, 1.0, 1.5)]
Scores = list[tuple[float, float]]


def reference_bm25(
    corpus: list[tuple[str, str]], queries: list[tuple[str, str]]
) -> list[list[str]]:
    """Each query's top 100 abstract ids by bm25s (Lucene BM25), or [] without bm25s."""
    try:
        import bm25s
        import Stemmer
    except ImportError:
        return []
    stemmer = Stemmer.Stemmer("english")
    tokens = bm25s.tokenize([text for _, text in corpus], stopwords="en", stemmer=stemmer)
    retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    retriever.index(tokens, show_progress=False)
    asked = bm25s.tokenize([text for _, text in queries], stopwords="en", stemmer=stemmer)
    found, _ = retriever.retrieve(asked, k=min(100, len(corpus)), show_progress=False)
    return [[corpus[index][0] for index in row] for row in found]


def measured(ranked: list[str], relevant: set[str]) -> tuple[float, float]:
    return ndcg_at_10(ranked, relevant), recall_at_100(ranked, relevant)


def mean(scores: Scores, part: int = 0, half: int | None = None) -> float:
    chosen = [
        pair[part] for number, pair in enumerate(scores) if half is None or number % 2 == half
    ]
    return sum(chosen) / len(chosen)


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
        scores: dict[str, Scores] = {mode: [] for mode in MODES}
        fusion: dict[tuple[int, float], Scores] = {setting: [] for setting in FUSION_GRID}
        services = {
            (rrf_k, weight): SearchService(
                runtime.embedding_model,
                settings.model_copy(update={"rrf_k": rrf_k, "rrf_keyword_weight": weight}),
            )
            for rrf_k, weight in FUSION_GRID
        }
        for query_id, text in queries:
            async with runtime.database.session() as session:
                for mode in MODES:
                    query = SearchQuery("cranfield", text, k=100, mode=mode)  # type: ignore[arg-type]
                    hits = await runtime.search.search(session, query)
                    ranked = [id_of_text[hit.text] for hit in hits]
                    scores[mode].append(measured(ranked, relevant[query_id]))
                for setting, service in services.items():
                    hits = await service.search(session, SearchQuery("cranfield", text, k=100))
                    ranked = [id_of_text[hit.text] for hit in hits]
                    fusion[setting].append(measured(ranked, relevant[query_id]))
        await runtime.close()
    reference = reference_bm25(corpus, queries)
    if reference:
        scores["reference BM25 (bm25s)"] = [
            measured(ranked, relevant[query_id])
            for ranked, (query_id, _) in zip(reference, queries, strict=True)
        ]
    rows = [[mode, mean(pairs), mean(pairs, 1)] for mode, pairs in scores.items()]
    best_single = max(rows[0][1], rows[1][1])
    chosen = max(FUSION_GRID, key=lambda setting: mean(fusion[setting], half=0))
    fusion_rows = [
        [
            rrf_k,
            weight,
            mean(fusion[(rrf_k, weight)], half=0),
            mean(fusion[(rrf_k, weight)], half=1),
            "chosen" if (rrf_k, weight) == chosen else "",
        ]
        for rrf_k, weight in FUSION_GRID
    ]
    report(
        "retrieval_quality_fusion",
        f"Hybrid fusion chosen on the even queries: rrf_k {chosen[0]}, keyword weight "
        f"{chosen[1]}; on the odd queries nDCG@10 {mean(fusion[chosen], half=1):.3f}",
        ["rrf_k", "keyword weight", "nDCG@10 even (choose)", "nDCG@10 odd (report)", ""],
        fusion_rows,
        {"queries": len(queries), "grid": FUSION_GRID},
    )
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
            "rrf_keyword_weight": settings.rrf_keyword_weight,
            "bm25": {"k1": settings.bm25_k1, "b": settings.bm25_b, "depth": settings.bm25_depth},
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
