"""`ragstore ingest`, `search`, `collections` and `documents`, run as a user runs them."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.settings import RAGSTORE
from tests.support.uploads import long_text

CORPUS_DOCX = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "docx"


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def ragstore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAGSTORE, *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text(long_text(3))
    (tmp_path / "b.md").write_text("# Title\n\nPgvector brings vector search to PostgreSQL.")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.txt").write_text("Reciprocal rank fusion merges two rankings.")
    (tmp_path / ".hidden.txt").write_text("never ingested")
    return tmp_path


def test_ingest_shows_a_summary_and_a_second_run_skips_everything(
    env: dict[str, str], folder: Path, upstream: FakeOpenAI
) -> None:
    first = ragstore(env, "ingest", str(folder), "--collection", "notes", "--recursive")
    calls_after_first = len(upstream.requests)
    second = ragstore(env, "ingest", str(folder), "--collection", "notes", "--recursive")

    assert first.returncode == 0, first.stderr
    # Piped: the summary's rows on stdout; progress and the totals on stderr.
    assert "3 ingested, 0 skipped, 0 failed" in first.stderr
    assert "embeddings" in first.stderr and "files" in first.stderr
    assert first.stdout.splitlines()[0] == "file\tresult\tchunks\tdetail"
    assert len(first.stdout.splitlines()) == 4
    assert ".hidden" not in first.stdout
    assert second.returncode == 0
    assert "0 ingested, 3 skipped, 0 failed" in second.stderr
    assert len(upstream.requests) == calls_after_first, "unchanged files are not embedded again"


def test_without_recursive_subfolders_are_left_out(env: dict[str, str], folder: Path) -> None:
    result = ragstore(env, "ingest", str(folder), "-c", "notes")

    assert "2 ingested" in result.stderr
    assert "c.txt" not in result.stdout


def test_a_failed_file_is_named_with_its_reason_and_the_exit_code_is_1(
    env: dict[str, str], folder: Path
) -> None:
    (folder / "picture.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))

    result = ragstore(env, "ingest", str(folder), "-c", "notes")

    assert result.returncode == 1
    assert "2 ingested, 0 skipped, 1 failed" in result.stderr
    assert f"{folder / 'picture.pdf'}\tfailed\t0\tunsupported file type" in result.stdout


def test_a_missing_path_is_a_usage_error(env: dict[str, str]) -> None:
    result = ragstore(env, "ingest", "/no/such/place", "-c", "notes")

    assert result.returncode == 2
    assert "no such file or folder" in result.stderr


@pytest.mark.skipif(not CORPUS_DOCX.is_dir(), reason="../shared/corpus not found beside the clone")
def test_ingesting_the_docx_corpus(env: dict[str, str]) -> None:
    first = ragstore(env, "ingest", str(CORPUS_DOCX), "-c", "corpus")
    second = ragstore(env, "ingest", str(CORPUS_DOCX), "-c", "corpus")

    assert first.returncode == 1, "three files have no text"
    assert "7 ingested, 0 skipped, 3 failed" in first.stderr
    assert "no extractable text in having-images.docx" in first.stdout
    assert "0 ingested, 7 skipped, 3 failed" in second.stderr


def test_search_collections_and_documents_commands(env: dict[str, str], folder: Path) -> None:
    ragstore(env, "ingest", str(folder), "-c", "notes", "-r")

    found = ragstore(env, "search", "merges", "-c", "notes", "-k", "1", "--mode", "keyword")
    listed = ragstore(env, "collections", "list")
    docs = ragstore(env, "documents", "list", "-c", "notes")
    deleted = ragstore(env, "collections", "delete", "notes", "--yes")
    after = ragstore(env, "collections", "list")

    assert found.returncode == 0, found.stderr
    header, row = found.stdout.splitlines()
    assert header == "chunk\tscore\tfile\tpage\ttext"
    chunk_id, _score, filename, _page, text = row.split("\t")
    assert chunk_id.isdigit() and filename == "c.txt" and "merges" in text
    assert listed.stdout.splitlines()[0] == "id\tname\tdocuments\tchunks\tcreated"
    assert listed.stdout.splitlines()[1].startswith("notes\tnotes\t3\t")
    documents = [line.split("\t") for line in docs.stdout.splitlines()[1:]]
    assert len(documents) == 3 and {d[2] for d in documents} == {"completed"}
    # Full ids, never cut to fit a terminal.
    assert all(len(d[0]) == 36 for d in documents)
    assert deleted.returncode == 0
    assert after.stdout.splitlines() == ["id\tname\tdocuments\tchunks\tcreated"]


def test_errors_are_one_line_and_exit_1(env: dict[str, str]) -> None:
    result = ragstore(env, "search", "x", "-c", "missing")

    assert result.returncode == 1
    assert "error: collection 'missing' not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_explains_every_command(env: dict[str, str]) -> None:
    result = ragstore(env, "--help")

    for command in ("serve", "ingest", "search", "db", "collections", "documents"):
        assert command in result.stdout


def test_retry_failed_queues_the_failed_documents(
    env: dict[str, str], folder: Path, upstream: FakeOpenAI
) -> None:
    upstream.fail_next(503, times=3)
    failed = ragstore(env, "ingest", str(folder / "a.txt"), "-c", "notes")

    result = ragstore(env, "documents", "retry-failed", "-c", "notes")

    assert failed.returncode == 1
    assert "embedding failed after 3 attempts" in failed.stdout
    assert result.returncode == 0
    assert "queued 1 failed documents of notes" in result.stdout


def test_info_names_the_database_model_and_what_is_stored(
    env: dict[str, str], folder: Path
) -> None:
    ragstore(env, "ingest", str(folder), "--collection", "notes")

    info = ragstore(env, "info")
    listed = ragstore(env, "collections", "list")

    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert lines[0].startswith("database: postgresql+asyncpg://")
    assert "embedding model: text-embedding-3-small (openai, 384 dimensions)" in lines
    assert "1 collections, 2 documents," in info.stdout
    assert "  notes: 2 documents," in info.stdout
    # Every command says which database it uses, on stderr (stdout stays for pipes).
    assert listed.stderr.startswith("database: postgresql+asyncpg://")
    assert "database:" not in listed.stdout


def test_json_output_of_every_listing_command(env: dict[str, str], folder: Path) -> None:
    ingested = ragstore(env, "ingest", str(folder), "-c", "notes", "--json")
    found = ragstore(env, "search", "merges", "-c", "notes", "--mode", "keyword", "--json")
    listed = ragstore(env, "collections", "list", "--json")
    docs = ragstore(env, "documents", "list", "-c", "notes", "--json")

    summary = json.loads(ingested.stdout)
    assert (summary["ingested"], summary["skipped"], summary["failed"]) == (2, 0, 0)
    assert {Path(f["path"]).name for f in summary["files"]} == {"a.txt", "b.md"}
    assert json.loads(found.stdout) == []  # c.txt is in a subfolder, not ingested
    collections = json.loads(listed.stdout)
    assert [(c["id"], c["document_count"]) for c in collections] == [("notes", 2)]
    assert collections[0]["chunk_count"] > 0
    assert {d["filename"] for d in json.loads(docs.stdout)} == {"a.txt", "b.md"}
    assert all(d["status"] == "completed" for d in json.loads(docs.stdout))
