"""The search playground in a real browser: each mode with a filter from the builder,
scores, the question's words marked, and a result's link to its chunk."""

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.support.browser import OfflinePage, screenshot
from tests.support.uploads import upload

MANUAL = (
    "To reset the X200, hold the power button for ten seconds until the light blinks.\n\n"
    "Wipe the X200 with a dry cloth; never use solvents on its screen."
)
OLD_MANUAL = "To reset the X100, hold the power button and the volume button together."


@pytest.fixture
async def manuals(api: httpx.AsyncClient) -> None:
    await api.post("/api/collections", json={"name": "Manuals", "id": "manuals"})
    for filename, text, product in (
        ("x200.txt", MANUAL, "x200"),
        ("x100.txt", OLD_MANUAL, "x100"),
    ):
        stored = await upload(
            api,
            text,
            filename,
            route="/api/collections/manuals/documents",
            metadata=f'{{"product": "{product}"}}',
        )
        assert stored.status_code == 201


@pytest.mark.usefixtures("manuals")
async def test_each_mode_finds_only_what_the_filter_lets_through(
    page: OfflinePage, api: httpx.AsyncClient
) -> None:
    ui = page.page
    await ui.goto(f"{api.base_url}/#/search?collection=manuals")
    await ui.get_by_label("Question", exact=True).fill("reset power button")
    await ui.get_by_role("button", name="Add condition").click()
    await ui.get_by_label("Key", exact=True).fill("product")
    await ui.get_by_label("Operator", exact=True).select_option("eq")
    await ui.get_by_label("Value", exact=True).fill("x200")
    results = ui.get_by_role("list", name="Results")

    for mode in ("vector", "keyword", "hybrid"):
        await ui.get_by_label("Mode", exact=True).select_option(mode)
        await ui.get_by_role("button", name="Search").click()
        await expect(ui.locator("#search-status")).to_have_text(f"1 result ({mode}).")
        await expect(results.locator(".result")).to_have_count(1)
        await expect(results).to_contain_text("x200.txt")
        await expect(results.locator("dt").first).to_have_text("score")
        await expect(results.locator("mark").first).to_have_text("reset")
    # Hybrid's score is a fused rank; the parts behind it are shown too.
    await expect(results.locator("dt")).to_have_text(["score", "similarity", "keyword rank"])
    await expect(results.locator("dd").nth(1)).to_have_text(re.compile(r"^0\.\d{3}$"))
    await expect(results.locator("dd").nth(2)).to_have_text(re.compile(r"^\d+\.\d{3}$"))
    await screenshot(ui, "search")

    await results.get_by_role("link", name="x200.txt · chunk #0").click()
    wanted = ui.locator(".chunk.wanted")
    await expect(wanted).to_be_focused()
    await expect(wanted).to_contain_text("hold the power button for ten seconds")


@pytest.mark.usefixtures("manuals")
async def test_conditions_combine_with_or_and_a_bad_filter_shows_the_servers_message(
    page: OfflinePage, api: httpx.AsyncClient
) -> None:
    ui = page.page
    await ui.goto(f"{api.base_url}/#/search?collection=manuals")
    await ui.get_by_label("Question", exact=True).fill("reset")
    await ui.get_by_label("Mode", exact=True).select_option("keyword")
    await ui.get_by_label("Match", exact=True).select_option("or")
    for value in ("x200", "x100"):
        await ui.get_by_role("button", name="Add condition").click()
        await ui.get_by_label("Key", exact=True).last.fill("product")
        await ui.get_by_label("Value", exact=True).last.fill(value)
    await ui.get_by_role("button", name="Search").click()
    await expect(ui.locator("#search-status")).to_have_text("2 results (keyword).")

    await ui.get_by_label("Operator", exact=True).last.select_option("gt")
    await ui.get_by_role("button", name="Search").click()
    refusal = await api.post(
        "/api/collections/manuals/search",
        json={
            "query": "reset",
            "mode": "keyword",
            "filters": {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "product", "value": "x200"},
                    {"type": "gt", "key": "product", "value": "x100"},
                ],
            },
        },
    )
    assert refusal.status_code == 422
    await expect(ui.locator("#search-status")).to_have_text(refusal.json()["detail"])
