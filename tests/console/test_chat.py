"""Chat in a real browser: the answer streams in, its sources are citations that open
the chunk, the model and usage are shown, and the conversation carries over turns."""

import threading

import httpx
from playwright.async_api import expect

from tests.support.browser import OfflinePage, screenshot
from tests.support.fake_openai import FakeOpenAI
from tests.support.uploads import upload

MANUAL = (
    "To reset the X200, hold the power button for ten seconds until the light blinks.\n\n"
    "Wipe the X200 with a dry cloth; never use solvents on its screen."
)
ANSWER = ["To reset the X200,", " hold the power button for ten seconds", " [Source: x200.txt]."]
PROVIDER_KEY = "sk-provider-key-from-the-console"


async def test_a_streamed_answer_cites_the_chunk_it_came_from(
    page: OfflinePage, api: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await api.post("/api/collections", json={"name": "Manuals", "id": "manuals"})
    await upload(api, MANUAL, "x200.txt", route="/api/collections/manuals/documents")
    upstream.chat_tokens = ANSWER.copy()
    held = threading.Event()
    upstream.hold_stream_after_first_token = held
    ui = page.page
    await ui.goto(f"{api.base_url}/#/chat?collection=manuals")

    await ui.get_by_label("Your message", exact=True).fill("How do I reset the X200?")
    await ui.get_by_role("button", name="Send").click()
    answer = ui.locator(".turn.assistant .answer")
    # The first token is on the page while the model has not sent the rest.
    await expect(answer).to_have_text(ANSWER[0])
    held.set()
    await expect(answer).to_have_text("".join(ANSWER))
    await expect(ui.locator("#chat-status")).to_have_text("Answer complete.")
    await expect(ui.locator(".turn.assistant")).to_contain_text(
        "gpt-4.1-mini · 10 prompt + 3 answer = 13 tokens"
    )
    sources = ui.get_by_role("list", name="Sources")
    await expect(sources.get_by_role("link")).to_have_text(["[1] x200.txt"])
    await screenshot(ui, "chat")

    await answer.get_by_role("link", name="[Source: x200.txt]").click()
    wanted = ui.locator(".chunk.wanted")
    await expect(wanted).to_be_focused()
    await expect(wanted).to_contain_text("hold the power button for ten seconds")


async def test_the_conversation_carries_over_turns_with_the_provider_key(
    page: OfflinePage, api: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    ui = page.page
    await ui.get_by_role("button", name="Keys").click()
    await ui.get_by_label("Model provider API key (optional)", exact=True).fill(PROVIDER_KEY)
    await ui.get_by_role("button", name="Save").click()
    await ui.goto(f"{api.base_url}/#/chat")
    await expect(ui.get_by_label("Collection", exact=True)).to_have_value("")

    question = ui.get_by_label("Your message", exact=True)
    for turn, text in enumerate(("Hi there", "And again?"), start=1):
        await question.fill(text)
        await question.press("Enter")
        await expect(ui.locator(".turn.assistant")).to_have_count(turn)
        await expect(ui.locator("#chat-status")).to_have_text("Answer complete.")

    await expect(ui.locator(".turn.assistant .answer").last).to_have_text("Hello, world!")
    chats = [request for request in upstream.requests if request.path == "chat"]
    assert [request.authorization for request in chats] == [f"Bearer {PROVIDER_KEY}"] * 2
    prompt = str(chats[-1].body["messages"])
    assert "user: Hi there" in prompt
    assert "assistant: Hello, world!" in prompt
