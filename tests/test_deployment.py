"""docker-compose.yml and the Dockerfile, checked by reading them (no Docker engine here)."""

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
