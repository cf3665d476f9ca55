"""A real browser for the console's tests: Debian's Chromium driven by Playwright.

The network is cut off except for loopback, so a page that reached for a CDN (or
anything else outside this machine) would fail its test: the console must work offline.
"""

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
INSTALL_HINT = (
    f"the browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium "
    "(Debian; .ci/run installs it)"
)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# RAGSTORE_SCREENSHOTS=1 refreshes the README's pictures; otherwise they go to a temporary
# folder, so that a test run leaves the checkout as it found it (the pictures show
# times and ids, which change every run).
SCREENSHOTS = (
    README_SCREENSHOTS
    if os.environ.get("RAGSTORE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "ragstore-screenshots"
)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


class OfflinePage:
    """A page whose every request off loopback is aborted and recorded, and which
    records the console's JavaScript errors; tests assert both lists stay empty."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.blocked: list[str] = []
        self.errors: list[str] = []

    async def _route(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith("data:") or host in LOOPBACK:
            await route.continue_()
        else:
            self.blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium reports a failed request (a 401, a refused upload) as a console
        # error too; those are expected answers, not faults of the page.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)


@asynccontextmanager
async def offline_page(
    browser: Browser, viewport: dict[str, int] | None = None
) -> AsyncIterator[OfflinePage]:
    context = await browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
    page = await context.new_page()
    offline = OfflinePage(page)
    await page.route("**/*", offline._route)
    page.on("console", offline._console)
    page.on("pageerror", lambda error: offline.errors.append(str(error)))
    try:
        yield offline
    finally:
        await context.close()


async def screenshot(page: Page, name: str) -> Path:
    """Saves the page as NAME.png in SCREENSHOTS."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(target), full_page=False)
    return target
