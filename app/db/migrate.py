"""Alembic, driven from Python: used by `ragstore db ...`, server start-up and tests."""

import io
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.core.config import Settings

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config(settings: Settings, url: str | None = None) -> Config:
    """A Config whose env.py uses these settings (and URL, when the caller has one)."""
    config = Config(str(ALEMBIC_INI), stdout=io.StringIO())
    config.attributes["settings"] = settings
    config.attributes["url"] = url
    config.attributes["skip_logging_config"] = True
    return config


def upgrade(settings: Settings, url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings, url), revision)


def downgrade(settings: Settings, url: str | None = None, revision: str = "-1") -> None:
    command.downgrade(alembic_config(settings, url), revision)


def current(settings: Settings, url: str | None = None) -> str:
    """The database's revision as Alembic prints it, e.g. `0001_initial_schema (head)`."""
    config = alembic_config(settings, url)
    command.current(config, verbose=False)
    output = config.stdout
    assert isinstance(output, io.StringIO)
    return output.getvalue().strip() or "(no revision: run `ragstore db upgrade`)"
