"""The console in Firefox: Debian's firefox-esr, driven over WebDriver BiDi by
puppeteer-core (tests/console/firefox/flows.mjs), through collections, a hybrid search and
a streamed chat with its citation, offline but for loopback. The Chromium tests cover
each view in depth; this shows the same modules run in the other engine."""

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.uploads import upload

FIREFOX = Path("/usr/bin/firefox-esr")
DRIVER = Path(__file__).resolve().parent / "firefox"
MANUAL = "To reset the X200, hold the power button for ten seconds until the light blinks."
ANSWER = ["To reset the X200,", " hold the power button", " [Source: x200.txt]."]


def _missing() -> str | None:
    if not FIREFOX.exists():
        return f"the Firefox test needs {FIREFOX}: apt-get install -y firefox-esr (.ci/run does)"
    if shutil.which("node") is None:
        return "the Firefox test needs Node.js: apt-get install -y nodejs npm (.ci/run does)"
    if not (DRIVER / "node_modules" / "puppeteer-core").is_dir():
        return f"the Firefox test needs its driver: npm ci --prefix {DRIVER} (make test does)"
    return None


async def test_collections_search_and_chat_work_in_firefox(
    api: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    if (reason := _missing()) is not None:
        pytest.skip(reason)
    await api.post("/api/collections", json={"name": "Manuals", "id": "manuals"})
    stored = await upload(api, MANUAL, "x200.txt", route="/api/collections/manuals/documents")
    assert stored.status_code == 201, stored.text
    upstream.chat_tokens = ANSWER.copy()

    flow = await asyncio.create_subprocess_exec(
        "node",
        str(DRIVER / "flows.mjs"),
        str(api.base_url).rstrip("/"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(flow.communicate(), timeout=180)

    assert flow.returncode == 0, err.decode()
    shown = json.loads(out.decode().strip().splitlines()[-1])
    assert "manuals" in shown["collections"] and "Manuals" in shown["collections"]
    assert shown["status"] == "1 result (hybrid)."
    assert "x200.txt" in shown["result"]["text"]
    assert shown["result"]["scores"] == ["score", "similarity", "keyword rank"]
    assert shown["result"]["marked"].lower() == "reset"
    assert shown["chat"] == "Answer complete."
    assert shown["answer"] == "".join(ANSWER)
    assert MANUAL in shown["chunk"]
    assert shown["blocked"] == []
    assert shown["errors"] == []
