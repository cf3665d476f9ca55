"""The documents view in a real browser: uploads by picker and by drag and drop with
their progress from the job's event stream, a refused file, the chunk inspector,
metadata edits and deletion."""

from pathlib import Path

import httpx
from playwright.async_api import expect

from tests.support.browser import OfflinePage, screenshot
from tests.support.fake_openai import FakeOpenAI
from tests.support.files import Heading, write_docx, write_pdf
from tests.support.uploads import PROSE, upload

MANUAL_PAGES = [
    "The X200 manual. To reset the X200, hold the power button for ten seconds.",
    "Cleaning. Wipe the X200 with a dry cloth; never use solvents on the screen.",
]
# A Windows program's first bytes: no document type ragstore reads.
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(range(256)) * 8


async def test_files_upload_with_progress_to_completed_and_a_refused_one_says_why(
    page: OfflinePage, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    await api.post("/api/collections", json={"name": "Manuals", "id": "manuals"})
    refusal = await upload(api, EXECUTABLE, "setup.exe", route="/api/collections/manuals/documents")
    assert refusal.status_code == 415
    pdf = write_pdf(tmp_path / "manual.pdf", MANUAL_PAGES)
    docx = write_docx(tmp_path / "guide.docx", [Heading("Safety"), PROSE])
    executable = tmp_path / "setup.exe"
    executable.write_bytes(EXECUTABLE)
    ui = page.page

    await ui.goto(f"{api.base_url}/#/collections/manuals")
    await ui.locator("#upload-files").set_input_files([pdf, docx, executable])

    for filename in ("manual.pdf", "guide.docx"):
        item = ui.locator(".uploads li").filter(has_text=filename)
        await expect(item).to_contain_text("completed", timeout=30_000)
        await expect(item.locator("progress")).to_have_js_property("value", 1)
    refused = ui.locator(".uploads li").filter(has_text="setup.exe")
    await expect(refused).to_contain_text(f"refused: {refusal.json()['detail']}")

    table = ui.locator("table")
    for filename in ("manual.pdf", "guide.docx"):
        await expect(table.locator("tr").filter(has_text=filename)).to_contain_text("completed")
    await expect(table.locator("tr").filter(has_text="setup.exe")).to_have_count(0)
    await screenshot(ui, "documents")

    await table.get_by_role("link", name="manual.pdf").click()
    chunks = ui.get_by_role("list", name="Chunks of manual.pdf")
    await expect(chunks.locator(".chunk").first).to_contain_text("page 1")
    await expect(chunks).to_contain_text("hold the power button for ten seconds")
    await expect(chunks).to_contain_text("Wipe the X200 with a dry cloth")


async def test_a_dropped_file_is_uploaded(page: OfflinePage, api: httpx.AsyncClient) -> None:
    await api.post("/api/collections", json={"name": "Notes", "id": "notes"})
    ui = page.page
    await ui.goto(f"{api.base_url}/#/collections/notes")
    await expect(ui.locator("#dropzone")).to_be_visible()

    await ui.evaluate(
        """(text) => {
            const files = new DataTransfer();
            files.items.add(new File([text], "dropped.txt", {type: "text/plain"}));
            const drop = new DragEvent("drop", {dataTransfer: files, bubbles: true});
            document.getElementById("dropzone").dispatchEvent(drop);
        }""",
        PROSE,
    )

    await expect(ui.locator(".uploads li").filter(has_text="dropped.txt")).to_contain_text(
        "completed", timeout=30_000
    )
    await expect(ui.locator("tr").filter(has_text="dropped.txt")).to_contain_text("completed")


async def test_metadata_is_edited_and_a_document_deleted_after_confirming(
    page: OfflinePage, api: httpx.AsyncClient
) -> None:
    await api.post("/api/collections", json={"name": "Notes", "id": "notes"})
    kept = (await upload(api, PROSE, "kept.txt", route="/api/collections/notes/documents")).json()
    await upload(api, PROSE + " Other.", "gone.txt", route="/api/collections/notes/documents")
    ui = page.page
    await ui.goto(f"{api.base_url}/#/collections/notes")

    await ui.get_by_role("button", name="Edit the metadata of kept.txt").click()
    editor = ui.get_by_label("Metadata of kept.txt (JSON object)")
    await editor.fill('{"page": 3}')
    await ui.get_by_role("button", name="Save").click()
    await expect(ui.locator(f"#metadata-{kept['id']}-status")).to_contain_text("page")
    await editor.fill('{"product": "x200"}')
    await ui.get_by_role("button", name="Save").click()
    await expect(ui.locator("tr").filter(has_text="kept.txt")).to_contain_text('{"product":"x200"}')
    stored = await api.get(f"/api/collections/notes/documents/{kept['id']}")
    assert stored.json()["metadata"] == {"product": "x200"}

    await ui.get_by_role("button", name="Delete gone.txt").click()
    await ui.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(ui.locator("tr").filter(has_text="gone.txt")).to_have_count(0)
    listed = (await api.get("/api/collections/notes/documents")).json()
    assert [document["filename"] for document in listed["data"]] == ["kept.txt"]


async def test_a_document_the_provider_failed_shows_why_and_is_retried(
    page: OfflinePage, api: httpx.AsyncClient, upstream: FakeOpenAI, tmp_path: Path
) -> None:
    await api.post("/api/collections", json={"name": "Notes", "id": "notes"})
    # Every try the settings allow (embedding_max_attempts) fails.
    upstream.fail_next(500, times=3, message="the provider is down", path="embeddings")
    notes = tmp_path / "notes.txt"
    notes.write_text(PROSE)
    ui = page.page
    await ui.goto(f"{api.base_url}/#/collections/notes")

    await ui.locator("#upload-files").set_input_files(notes)
    item = ui.locator(".uploads li").filter(has_text="notes.txt")
    await expect(item).to_contain_text("failed: ", timeout=30_000)
    row = ui.locator("tr").filter(has_text="notes.txt")
    await expect(row).to_contain_text("failed")
    failed = (await api.get("/api/collections/notes/documents")).json()["data"][0]
    assert failed["retryable"] is True
    await expect(row.locator("p.error")).to_have_text(failed["error"])

    await row.get_by_role("button", name="Retry notes.txt").click()
    retried = ui.locator(".uploads li").filter(has_text="notes.txt (retry)")
    await expect(retried).to_contain_text("completed", timeout=30_000)
    await expect(row.locator(".badge")).to_have_text("completed")
