"""With RAGSTORE_API_KEYS set: the console and the API docs load without a key, the
console asks for one once and keeps it for the tab, and the API refuses requests
without it."""

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Response, expect
from pydantic import SecretStr

from app.core.config import Settings
from app.core.middleware import MISSING_OR_INVALID_KEY
from tests.support.browser import offline_page
from tests.support.servers import serve_app

KEY = "console-service-key-0123"
REDOC_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A server that wants a service key; its client sends none."""
    async with serve_app(settings.model_copy(update={"api_keys": [SecretStr(KEY)]})) as client:
        yield client


async def test_the_console_asks_for_the_key_once_and_keeps_it_for_the_tab(
    browser: Browser, guarded: httpx.AsyncClient
) -> None:
    await guarded.post(
        "/api/collections", json={"name": "Manuals"}, headers={"Authorization": f"Bearer {KEY}"}
    )
    async with offline_page(browser) as offline:
        ui = offline.page
        answers: list[Response] = []
        ui.on("response", lambda answer: answers.append(answer))
        await ui.goto(f"{guarded.base_url}/")

        dialog = ui.get_by_role("dialog", name="Keys")
        await expect(dialog).to_contain_text(MISSING_OR_INVALID_KEY)
        refused = [a for a in answers if a.url.endswith("/api/collections?limit=1000")]
        assert [answer.status for answer in refused] == [401]

        await dialog.get_by_label("Service API key").fill("not-the-key")
        await dialog.get_by_role("button", name="Save").click()
        await expect(dialog).to_be_visible()
        await dialog.get_by_label("Service API key").fill(KEY)
        await dialog.get_by_role("button", name="Save").click()
        await expect(ui.get_by_role("link", name="Manuals")).to_be_visible()
        await expect(dialog).to_be_hidden()

        await ui.reload()
        await expect(ui.get_by_role("link", name="Manuals")).to_be_visible()
        await expect(dialog).to_be_hidden()
        kept = await ui.evaluate("sessionStorage.getItem('ragstore.serviceKey')")

    assert kept == KEY
    assert offline.blocked == []
    assert offline.errors == []


async def test_pages_load_without_a_key_and_nothing_else_does(guarded: httpx.AsyncClient) -> None:
    for page in ("/", "/console/js/api.js", "/console/css/console.css", "/docs", "/redoc"):
        assert (await guarded.get(page)).status_code == 200, page
    assert (await guarded.get("/openapi.json")).json()["components"]["securitySchemes"]

    for refused in ("/api/collections", "/api/jobs", "/console", "/consoles/x", "/api/chat"):
        answer = await guarded.get(refused)
        assert answer.status_code == 401, refused
        assert answer.json() == {"detail": MISSING_OR_INVALID_KEY}


async def test_the_docs_and_redoc_render_their_operations_offline_with_keys_set(
    browser: Browser, guarded: httpx.AsyncClient
) -> None:
    async with offline_page(browser) as offline:
        ui = offline.page
        await ui.goto(f"{guarded.base_url}/docs")

        paths = ui.locator(".opblock-summary-path")
        await expect(
            paths.filter(has_text="/api/collections/{collection_id}/search")
        ).to_be_visible()
        await expect(ui.get_by_role("button", name="Authorize")).to_be_visible()
        docs_blocked = offline.blocked.copy()

        await ui.goto(f"{guarded.base_url}/redoc")
        await expect(
            ui.get_by_text("/api/collections/{collection_id}/search").first
        ).to_be_attached()

    assert docs_blocked == []
    # ReDoc's bundle asks its CDN for the image of its "powered by" badge, whatever the
    # page says; offline the badge is blank and nothing else is missing.
    assert set(offline.blocked) <= {REDOC_BADGE}
    assert [error for error in offline.errors if REDOC_BADGE not in error] == []
