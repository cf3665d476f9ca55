"""A bad setting stops every command with one line per problem, naming the environment
variable and what it allows, and exit code 2: no traceback."""

import os
import subprocess
import sys

from tests.support.settings import RAGSTORE


def ragstore_with(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAGSTORE, *args],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_setting_is_one_line_naming_the_variable_and_exit_code_2() -> None:
    result = ragstore_with(
        "collections", "list", RAGSTORE_LOG_LEVEL="loud", RAGSTORE_CHUNK_SIZE="big"
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert sorted(result.stderr.splitlines()) == [
        "ragstore: invalid RAGSTORE_CHUNK_SIZE: Input should be a valid integer, unable to "
        "parse string as an integer (got 'big')",
        "ragstore: invalid RAGSTORE_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or "
        "'ERROR' (got 'LOUD')",
    ]


def test_settings_that_conflict_are_named_too() -> None:
    result = ragstore_with(
        "serve",
        RAGSTORE_EMBEDDING_PROVIDER="openai",
        RAGSTORE_EMBEDDING_MODEL="embedder-xl",
        RAGSTORE_EMBEDDING_DIMENSIONS="20000",
    )

    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("ragstore: invalid settings: embedder-xl gives 20000")
    assert "pgvector stores at most 16000" in result.stderr
    assert "RAGSTORE_EMBEDDING_DIMENSIONS" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_database_of_another_dimension_is_one_line_and_exit_code_2(
    cli_env: dict[str, str],
) -> None:
    result = subprocess.run(
        [RAGSTORE, "collections", "list"],
        env={**cli_env, "RAGSTORE_EMBEDDING_DIMENSIONS": "512"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("ragstore: ")]
    assert len(errors) == 1 and "384" in errors[0] and "512" in errors[0]
    assert "Traceback" not in result.stderr


def test_the_local_provider_without_its_extra_says_how_to_install_it() -> None:
    """As in an install without `ragstore[local]`: the module cannot be found (a None in
    sys.modules makes importlib's find_spec answer None, as for a missing package)."""
    hide_the_extra = (
        "import sys; sys.modules['sentence_transformers'] = None; "
        "from app.cli.main import main; sys.argv = ['ragstore', 'serve']; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_the_extra],
        env={**os.environ, "RAGSTORE_EMBEDDING_PROVIDER": "local"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "ragstore: RAGSTORE_EMBEDDING_PROVIDER=local needs the local model, which is not "
        "installed: pip install 'ragstore[local]' (make run does), or set "
        "RAGSTORE_EMBEDDING_PROVIDER=openai"
    ]
