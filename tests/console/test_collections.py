"""The collections view in a real browser: create, rename, delete after confirming, and
the server's health, at desktop and phone widths."""

import httpx
from playwright.async_api import Browser, expect

from tests.support.browser import PHONE, OfflinePage, offline_page


async def test_a_collection_is_created_renamed_and_deleted_after_confirming(
    page: OfflinePage, api: httpx.AsyncClient
) -> None:
    ui = page.page
    await expect(ui.locator("#health")).to_contain_text("text-embedding-3-small (384 dimensions")

    await ui.get_by_label("Name", exact=True).fill("Manuals")
    await ui.get_by_label("Id (optional)").fill("manuals")
    await ui.get_by_role("button", name="Create").click()
    row = ui.locator("tr[data-collection='manuals']")
    await expect(row).to_contain_text("Manuals")
    await expect(ui.get_by_role("status").first).to_contain_text("Created Manuals (manuals).")

    await ui.get_by_role("button", name="Rename Manuals").click()
    await ui.get_by_label("New name for Manuals").fill("Handbooks")
    await ui.get_by_role("button", name="Save").click()
    await expect(row.get_by_role("link")).to_have_text("Handbooks")
    assert (await api.get("/api/collections/manuals")).json()["name"] == "Handbooks"

    await row.get_by_role("button", name="Delete Handbooks").click()
    dialog = ui.get_by_role("dialog")
    await expect(dialog).to_contain_text("Delete the collection Handbooks and its 0 documents?")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(row).to_be_visible()

    await row.get_by_role("button", name="Delete Handbooks").click()
    await dialog.get_by_role("button", name="Delete").click()
    await expect(row).to_have_count(0)
    assert (await api.get("/api/collections/manuals")).status_code == 404


async def test_a_refused_name_shows_the_servers_message(page: OfflinePage) -> None:
    ui = page.page
    await ui.get_by_label("Name", exact=True).fill("Bad id")
    await ui.get_by_label("Id (optional)").fill("no spaces allowed")
    await ui.get_by_role("button", name="Create").click()

    await expect(ui.locator("#create-status")).to_contain_text("body.id")
    await expect(ui.locator("#create-status")).to_have_class("status error")


async def test_the_list_fits_a_phone_and_is_reached_by_keyboard(
    browser: Browser, api: httpx.AsyncClient
) -> None:
    for name in ("Manuals", "Contracts", "Research notes"):
        await api.post("/api/collections", json={"name": name})

    async with offline_page(browser, viewport=PHONE) as phone:
        ui = phone.page
        await ui.goto(f"{api.base_url}/")
        await expect(ui.get_by_role("link", name="Research notes")).to_be_visible()
        width = await ui.evaluate("document.documentElement.scrollWidth")

        await ui.get_by_label("Name", exact=True).focus()
        await ui.keyboard.type("Typed")
        await ui.keyboard.press("Enter")
        await expect(ui.get_by_role("link", name="Typed")).to_be_visible()

    assert width <= PHONE["width"]
    assert phone.blocked == []
    assert phone.errors == []
