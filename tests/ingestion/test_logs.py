"""The server log says what was ingested: one INFO line per document, naming the file,
its collection, its chunks, the time and whether it was embedded or copied."""

import logging
import re

import httpx
import pytest

from tests.support.uploads import long_text, upload


async def test_each_ingested_document_is_one_info_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.ingestion.service")

    await upload(client, long_text(), "notes.txt", session_id="north")
    await upload(client, long_text(), "copy.txt", session_id="south")

    lines = [
        record.getMessage()
        for record in caplog.records
        if record.name == "app.ingestion.service" and record.getMessage().startswith("ingested")
    ]
    assert len(lines) == 2
    assert re.fullmatch(
        r"ingested notes\.txt into north: \d+ chunks in \d+\.\d\d s \(embedded\)", lines[0]
    )
    assert re.fullmatch(
        r"ingested copy\.txt into south: \d+ chunks in \d+\.\d\d s \(from the cache\)", lines[1]
    )
