"""`POST /api/collections/{id}/chat`: a conversation answered from a collection, with
retrieval chosen per request, and a prompt trimmed to fit the model's context."""

import httpx
import pytest

from app.core.config import Settings
from tests.support.chat import chat_requests, parse_events
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import serve_app
from tests.support.uploads import upload

ROUTE = "/api/collections/docs/chat"
ENGINES = "The Falcon rocket engine burns kerosene and liquid oxygen at high pressure."
BAKING = "Sourdough bread needs flour, water, salt and a lively starter culture."


async def seed(client: httpx.AsyncClient) -> None:
    await upload(client, ENGINES, "engines.txt", session_id="docs", metadata='{"topic": "space"}')
    await upload(client, BAKING, "baking.txt", session_id="docs", metadata='{"topic": "food"}')


@pytest.fixture
async def docs(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await seed(client)
    return client


async def test_a_conversation_streams_with_its_history_and_sources(
    docs: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    upstream.chat_tokens = ["Kerosene", "."]
    messages = [
        {"role": "user", "content": "Tell me about rockets."},
        {"role": "assistant", "content": "They burn propellant."},
        {"role": "user", "content": "What does the rocket engine burn?"},
    ]

    answer = await docs.post(ROUTE, json={"messages": messages, "instructions": "Be brief."})

    assert answer.status_code == 200, answer.text
    events = parse_events(answer.text)
    assert [name for name, _ in events] == ["sources", "token", "token", "done"]
    sources = events[0][1]["sources"]
    assert sources[0]["filename"] == "engines.txt"
    assert sources[0]["snippet"] == ENGINES and sources[0]["similarity"] > 0.2
    assert events[-1][1]["model"] == "gpt-4.1-mini"
    sent = chat_requests(upstream)[-1]["messages"]
    assert [m["role"] for m in sent] == ["developer", "user", "assistant", "user"]
    assert sent[0]["content"].startswith("Be brief.")
    assert sent[1]["content"] == "Tell me about rockets."
    assert "[Source: engines.txt]" in sent[-1]["content"]
    assert sent[-1]["content"].endswith("Question: What does the rocket engine burn?")


async def test_retrieval_is_chosen_per_request_and_json_answers_on_request(
    docs: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    question = [{"role": "user", "content": "What does the rocket engine burn?"}]

    filtered = await docs.post(
        ROUTE,
        json={
            "messages": question,
            "filters": {"topic": "food"},
            "min_similarity": -1,
            "k": 1,
            "stream": False,
        },
    )
    keyword = await docs.post(
        ROUTE, json={"messages": question, "mode": "keyword", "stream": False}
    )

    assert filtered.status_code == 200, filtered.text
    body = filtered.json()
    assert body["answer"] == "Hello, world!"
    assert [s["filename"] for s in body["sources"]] == ["baking.txt"]
    assert body["model"] == "gpt-4.1-mini"
    assert [s["filename"] for s in keyword.json()["sources"]] == ["engines.txt"]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"messages": [{"role": "user", "content": "hi"}], "top_k": 3}, "body.top_k"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "the last message must be"),
        ({"messages": []}, "body.messages"),
    ],
)
async def test_bad_bodies_are_422s_naming_the_problem(
    docs: httpx.AsyncClient, body: dict[str, object], names: str
) -> None:
    answer = await docs.post(ROUTE, json=body)

    assert answer.status_code == 422
    assert names in answer.json()["detail"]


async def test_old_turns_are_dropped_to_fit_the_context(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    small = settings.model_copy(update={"chat_context_tokens": 1_000, "chat_answer_tokens": 500})
    history = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n} " + "x" * 400}
        for n in range(8)
    ]
    question = {"role": "user", "content": "What does the rocket engine burn?"}
    async with serve_app(small) as client:
        await seed(client)
        kept = await client.post(ROUTE, json={"messages": [*history, question], "stream": False})
        too_long = await client.post(
            ROUTE,
            json={"messages": [{"role": "user", "content": question["content"] * 120}]},
        )

    assert kept.status_code == 200, kept.text
    sent = chat_requests(upstream)[-1]["messages"]
    total = sum(len(message["content"]) for message in sent)
    assert total <= (1_000 - 500) * 3
    assert len(sent) < 2 + len(history)
    # The newest turns stay, in order, right before the question.
    assert sent[-2]["content"].startswith("turn 7 ")
    assert too_long.status_code == 422
    assert "RAGSTORE_CHAT_CONTEXT_TOKENS" in too_long.json()["detail"]
