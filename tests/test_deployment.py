"""docker-compose.yml and the Dockerfile, checked by reading them (no Docker engine here)."""

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import Settings


@pytest.fixture
def compose(project_root: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((project_root / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_db_service_is_pgvector_with_a_healthcheck_and_a_named_volume(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]

    assert db["image"].startswith("pgvector/pgvector:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume_name = db["volumes"][0].split(":")[0]
    assert volume_name in compose["volumes"]


def test_api_is_built_here_and_waits_for_a_healthy_db(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]

    assert api["build"] == "."
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert "8000:8000" in api["ports"]


def test_api_database_url_points_at_the_db_service(compose: dict[str, Any]) -> None:
    url = compose["services"]["api"]["environment"]["DATABASE_URL"].replace(
        "${POSTGRES_PASSWORD:-ragstore}", "ragstore"
    )

    assert "@db:5432/" in url
    assert Settings(_env_file=None, database_url=url).database_url == url  # type: ignore[call-arg]


def test_dockerfile_runs_as_a_non_root_user_and_migrates_on_start(project_root: Path) -> None:
    lines = (project_root / "Dockerfile").read_text().splitlines()
    user_lines = [line.split()[1] for line in lines if line.startswith("USER ")]
    command = next(line for line in lines if line.startswith("CMD "))

    assert user_lines and user_lines[-1] not in ("root", "0")
    assert '"serve"' in command
    assert Settings(_env_file=None).migrate_on_start  # type: ignore[call-arg]


def test_the_image_installs_no_cuda_and_no_torch(project_root: Path, tmp_path: Path) -> None:
    """The Dockerfile's own pip install, resolved (not installed) from the package index:
    the image embeds through the openai provider, so nothing of torch may come with it."""
    lines = (project_root / "Dockerfile").read_text().splitlines()
    install = next(line for line in lines if line.startswith("RUN pip install"))
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            *shlex.split(install.removeprefix("RUN pip install")),
        ],
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert resolved.returncode == 0, resolved.stderr
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}

    assert "ragstore" in names and "fastapi" in names
    assert not {name for name in names if name.startswith("nvidia-")}
    assert not names & {"torch", "triton", "sentence-transformers"}
    environment = next(
        line
        for line in lines
        if "RAGSTORE_EMBEDDING_PROVIDER=" in line and not line.lstrip().startswith("#")
    )
    assert "RAGSTORE_EMBEDDING_PROVIDER=openai" in environment
