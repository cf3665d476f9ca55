"""Settings for the app under test, built from code only."""

import sys
from pathlib import Path

from app.core.config import Settings

SERVER_KEY = "test-server-key-0123456789"
# The installed `ragstore` command, beside this interpreter.
RAGSTORE = str(Path(sys.executable).with_name("ragstore"))

# The app under test embeds through the fake OpenAI server (fast, countable);
# tests of the local model ask for it themselves.
APP_SETTINGS: dict[str, object] = {
    "embedding_provider": "openai",
    "embedding_model": "text-embedding-3-small",
    "embedding_dimensions": 384,
    "embedding_retry_max_wait_seconds": 0.05,
    "embedding_max_attempts": 3,
    # Job tests start workers themselves.
    "worker_in_process": False,
}


def base_settings(**overrides: object) -> Settings:
    """Settings from code only: a developer's .env must not change what tests see."""
    values: dict[str, object] = {"migrate_on_start": False, "upstream_max_retries": 0}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def with_faulty_provider(settings: Settings, **overrides: object) -> Settings:
    """The app with its worker, small embedding batches (more calls, more faults), a
    retry budget for a provider failing one call in five, and a client timeout that the
    provider's hangs run past."""
    faulty: dict[str, object] = {
        "worker_in_process": True,
        "embedding_batch_size": 2,
        "embedding_max_attempts": 10,
        "upstream_timeout_seconds": 1.0,
    }
    return settings.model_copy(update={**faulty, **overrides})
