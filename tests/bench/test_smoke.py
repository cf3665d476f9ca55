"""Each benchmark runs at a tiny size, so none of them rots. Numbers are not checked here:
they are measured by `make bench` and reported in the README."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.files import write_pdf

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(
    module: str, results: Path, *args: str, saved_as: str | None = None
) -> dict[str, object]:
    """Run `bench.<module>` with `args`; the table it saved (as `saved_as`, if not as the
    module's name)."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "RAGSTORE_BENCH_RESULTS": str(results), "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    saved: dict[str, object] = json.loads((results / f"{saved_as or module}.json").read_text())
    return saved


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("ingest_vs_original", ["--chunks", "40", "--latency", "0.002", "--dimensions", "384"]),
        ("write_path", ["--rows", "50", "--repeat", "1", "--dimensions", "1536"]),
        ("chat_overhead", ["--requests", "3", "--latency", "0.001"]),
        ("bm25_pruning", ["--size", "500", "--queries", "3"]),
        ("ingest_one_file", ["--megabytes", "0.02", "--latency", "0.001"]),
        ("write_costs", ["--megabytes", "0.02", "--repeat", "1"]),
        (
            "quantized_index",
            [
                "--rows",
                "500",
                "--inserts",
                "50",
                "--candidates",
                "20",
                "--graphs",
                "16:64,8:32",
                "--texts",
                "60",
            ],
        ),
        (
            "quantized_index",
            ["--rows", "300", "--inserts", "30", "--candidates", "20", "--vectors", "word-sum"],
        ),
        (
            "memory",
            ["--small-mb", "0.05", "--large-mb", "0.2", "--pdf", "none.pdf", "--dimensions", "384"],
        ),
        ("soak", ["--seconds", "3", "--clients", "3"]),
        ("deferred_keyword_search", ["--chunks", "200", "--questions", "3"]),
        (
            "pending_search",
            ["--size", "600", "--dimensions", "1536", "--pending", "0,50", "--questions", "5"],
        ),
    ],
)
def test_benchmark_runs_and_saves_its_table(module: str, args: list[str], tmp_path: Path) -> None:
    saved = run_benchmark(module, tmp_path, *args)

    assert saved["benchmark"] == module
    assert saved["rows"] and saved["machine"]


def test_search_scale_sweeps_ef_search_and_index_builds(tmp_path: Path) -> None:
    saved = run_benchmark(
        "search_scale",
        tmp_path,
        *("--sizes", "2000", "--texts", "30", "--queries", "3", "--modes", "vector"),
        *("--ef-search", "1,100", "--index", "16:64,8:16"),
    )

    inputs = saved["inputs"]
    assert isinstance(inputs, dict)
    overhead = inputs["overhead_ms_p50_p95_p99"]
    assert set(overhead) == {
        "SQL alone",
        "HTTP floor, no database",
        "FastAPI + SQLAlchemy floor",
        "ragstore route",
    }
    for name, (p50, p95, p99) in overhead.items():
        assert 0 < p50 <= p95 <= p99, f"{name} was measured"
    sweep = json.loads((tmp_path / "search_scale_ef_search.json").read_text())
    cells = {(row[1], row[3], row[4]) for row in sweep["rows"]}
    assert cells == {
        (index, ef, filter_)
        for index in ("16/64", "8/16")
        for ef in (1, 100)
        for filter_ in ("none", "1% of chunks")
    }
    for row in sweep["rows"]:
        recall, worst, source_recall, distance_ratio = row[10:14]
        assert 0 <= worst <= recall <= 1 and 0 <= source_recall <= 1
        assert distance_ratio >= 0.999, "no index finds chunks closer than an exact scan"


def test_search_scale_at_1536_dimensions_compares_bm25_and_a_small_collection(
    tmp_path: Path,
) -> None:
    saved = run_benchmark(
        "search_scale",
        tmp_path,
        *("--sizes", "300,600", "--texts", "30", "--queries", "3", "--small", "100"),
        *("--modes", "vector,keyword", "--dimensions", "1536"),
    )

    inputs = saved["inputs"]
    assert isinstance(inputs, dict)
    assert (inputs["dimensions"], inputs["vectors"]) == (1536, "dense, fake upstream")
    rows = saved["rows"]
    assert isinstance(rows, list)
    assert {row[0] for row in rows} == {300, 600, "100 alone", "100 beside 600"}
    keyword = [row for row in rows if row[1] == "keyword"]
    assert len(keyword) == 8, "with and without the filter, at each of the four"
    for row in keyword:
        exhaustive_p50, overlap = row[10], row[12]
        assert exhaustive_p50 > 0 and 0 <= overlap <= 1
    for row in rows:
        if row[1] == "vector":
            assert 0 <= row[12] <= 1, "recall@10 of the quantized index against exact"


def test_cache_benchmark_runs_on_a_generated_pdf(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "doc.pdf", [f"Page {n} about flow and heat." for n in range(5)])

    saved = run_benchmark("cache", tmp_path, "--latency", "0.002", "--file", str(pdf))

    rows = saved["rows"]
    assert isinstance(rows, list)
    assert [row[0] for row in rows] == ["1,536"] * 3 + ["384"] * 3
    # Columns: dimensions, upload, chunks, embedding calls, ...
    assert [row[3] for row in rows] == [1, 0, 0] * 2, "the cached uploads make no call"


@pytest.mark.skipif(
    not (PROJECT_ROOT.parent / "shared" / "corpus" / "cranfield").is_dir(),
    reason="../shared/corpus not found beside the clone",
)
def test_retrieval_quality_benchmark_runs(tmp_path: Path) -> None:
    saved = run_benchmark("retrieval_quality", tmp_path, "--documents", "60", "--queries", "5")

    modes = [row[0] for row in saved["rows"]]  # type: ignore[index]
    # The reference BM25 row needs bm25s, which only the bench extra installs.
    assert modes in (
        ["vector", "keyword", "hybrid"],
        ["vector", "keyword", "hybrid", "reference BM25 (bm25s)"],
    )
    fusion = json.loads((tmp_path / "retrieval_quality_fusion.json").read_text())
    assert [row[4] for row in fusion["rows"]].count("chosen") == 1


def test_load_run_loses_no_upload(tmp_path: Path) -> None:
    saved = run_benchmark(
        "load", tmp_path, "--seconds", "3", "--clients", "4", "--latency", "0.002"
    )

    inputs = saved["inputs"]
    assert isinstance(inputs, dict)
    checks = inputs["verification"]
    assert checks["documents_acknowledged"] > 0
    assert checks["lost_uploads"] == []
    assert checks["repeated_file_documents"] <= 1
    assert not any(code.startswith("5") for code in inputs["status_codes"])


def test_other_stores_benchmark_runs(tmp_path: Path) -> None:
    for module in ("langchain_postgres", "langchain_openai", "llama_index.vector_stores.postgres"):
        pytest.importorskip(module, reason="the competitors are in the bench extra: .[bench]")

    saved = run_benchmark(
        "other_stores",
        tmp_path,
        "--chunks",
        "30",
        "--repeat",
        "1",
        "--queries",
        "2",
        "--latency",
        "0.002",
    )

    rows = saved["rows"]
    assert isinstance(rows, list)
    assert {row[0] for row in rows} >= {
        "ragstore",
        "langchain-postgres PGVectorStore",
        "llama-index PGVectorStore",
    }
    assert len({row[2] for row in rows if row[2] != ""}) == 1, "every store holds the same chunks"


def test_one_file_benchmark_alternates_core_counts_and_reports_the_speed_up(
    tmp_path: Path,
) -> None:
    saved = run_benchmark(
        "ingest_one_file",
        tmp_path,
        *("--megabytes", "0.02", "--latency", "0.001", "--dimensions", "384"),
        *("--cores", "2,1", "--repeat", "2"),
        saved_as="ingest_one_file_cores",
    )

    assert saved["benchmark"] == "ingest_one_file_cores"
    rows = saved["rows"]
    assert isinstance(rows, list)
    assert [row[1] for row in rows] == [2, 1]
    # The fewest cores against themselves.
    assert rows[1][-1] == "1.00x / 1.00x"
    assert saved["inputs"] == {**saved["inputs"], "cores": [2, 1], "alternating": True}
