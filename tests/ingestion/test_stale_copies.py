"""Temporary copies of uploads left by a killed process are removed when ragstore starts;
copies young enough to belong to a live upload or job are kept."""

import os
import tempfile
import time
from pathlib import Path

from app.core.config import Settings
from app.ingestion.upload import JOB_FILE_PREFIX, UPLOAD_PREFIX
from tests.support.servers import serve_app

TWO_DAYS = 2 * 24 * 3600


async def test_copies_a_killed_process_left_are_removed_at_start(settings: Settings) -> None:
    folder = Path(tempfile.gettempdir())
    stale = [folder / f"{UPLOAD_PREFIX}killed", folder / f"{JOB_FILE_PREFIX}killed"]
    live = folder / f"{UPLOAD_PREFIX}live"
    for path in (*stale, live):
        path.write_bytes(b"partial upload")
    for path in stale:
        long_ago = time.time() - TWO_DAYS
        os.utime(path, (long_ago, long_ago))
    try:
        async with serve_app(settings) as client:
            assert (await client.get("/api/health")).status_code == 200

        assert [path.exists() for path in stale] == [False, False]
        assert live.exists()
    finally:
        for path in (*stale, live):
            path.unlink(missing_ok=True)
