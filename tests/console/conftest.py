from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser

from app.core.config import Settings
from tests.support.browser import CHROMIUM, INSTALL_HINT, OfflinePage, chromium, offline_page
from tests.support.servers import serve_app


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for every console test (each test gets a fresh context)."""
    if not CHROMIUM.exists():
        pytest.skip(INSTALL_HINT)
    async with chromium() as launched:
        yield launched


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    """The app with its worker: the console uploads in the background and follows the job."""
    return settings.model_copy(update={"worker_in_process": True})


@pytest.fixture
async def api(console_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The served app; its client seeds data through the same API the console reads."""
    async with serve_app(console_settings) as client:
        yield client


@pytest.fixture
async def page(browser: Browser, api: httpx.AsyncClient) -> AsyncIterator[OfflinePage]:
    """A desktop-sized page on the console, offline but for loopback; at the end no
    request may have left loopback and the page may have logged no error."""
    async with offline_page(browser) as offline:
        await offline.page.goto(f"{api.base_url}/")
        yield offline
        assert offline.blocked == []
        assert offline.errors == []
