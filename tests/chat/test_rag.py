"""Retrieval-augmented chat: the prompt the model gets, and both ways the answer streams."""

import json

import httpx
import pytest

from app.compat.endpoints import NOTHING_RELEVANT
from tests.support.chat import SSE, chat_requests, parse_events
from tests.support.fake_openai import FakeOpenAI
from tests.support.uploads import upload


@pytest.fixture
async def session(client: httpx.AsyncClient) -> str:
    await upload(
        client,
        "The Falcon rocket engine burns kerosene and liquid oxygen at high pressure.",
        "engines.txt",
        session_id="docs",
    )
    await upload(
        client,
        "Sourdough bread needs flour, water, salt and a lively starter culture.",
        "baking.txt",
        session_id="docs",
    )
    return "docs"


async def test_rag_chat_streams_an_answer_built_on_the_retrieved_chunks(
    client: httpx.AsyncClient, upstream: FakeOpenAI, session: str
) -> None:
    upstream.chat_tokens = ["Kerosene", " and", " oxygen."]

    response = await client.post(
        "/api/rag-chat",
        json={"user_message": "What does the rocket engine burn?", "session_id": session},
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Kerosene and oxygen."
    (sent,) = chat_requests(upstream)
    assert sent["model"] == "gpt-4.1-mini"
    instructions, question = sent["messages"]
    assert "[Source: filename]" in instructions["content"]
    assert "do not cover" in instructions["content"]
    assert "[Source: engines.txt]\nThe Falcon rocket engine burns kerosene" in question["content"]
    assert question["content"].endswith("Question: What does the rocket engine burn?")


async def test_sse_sends_sources_then_tokens_then_done_with_usage(
    client: httpx.AsyncClient, upstream: FakeOpenAI, session: str
) -> None:
    upstream.chat_tokens = ["Flour", ", water", "."]

    response = await client.post(
        "/api/rag-chat",
        json={"user_message": "What goes into sourdough bread?", "session_id": session},
        headers=SSE,
    )

    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    names = [name for name, _ in events]
    assert names == ["sources", "token", "token", "token", "done"]
    sources = events[0][1]["sources"]
    assert sources[0]["filename"] == "baking.txt"
    assert set(sources[0]) == {
        "chunk_id",
        "document_id",
        "filename",
        "page",
        "score",
        "similarity",
        "snippet",
    }
    assert sources[0]["snippet"].startswith("Sourdough bread needs flour")
    assert "".join(data["text"] for name, data in events if name == "token") == "Flour, water."
    assert events[-1][1]["model"] == "gpt-4.1-mini"
    assert events[-1][1]["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "total_tokens": 13,
    }
    assert chat_requests(upstream)[0]["stream_options"] == {"include_usage": True}


async def test_sse_reports_a_stream_broken_mid_answer_as_an_error_event(
    client: httpx.AsyncClient, upstream: FakeOpenAI, session: str
) -> None:
    upstream.chat_tokens = ["one", " two", " three"]
    upstream.break_stream_after = 2

    response = await client.post(
        "/api/rag-chat",
        json={"user_message": "rocket engine kerosene", "session_id": session},
        headers=SSE,
    )

    names = [name for name, _ in parse_events(response.text)]
    assert names == ["sources", "token", "token", "error"]
    assert "broke off" in parse_events(response.text)[-1][1]["detail"]


async def test_nothing_relevant_is_said_without_asking_the_model(
    client: httpx.AsyncClient, upstream: FakeOpenAI, session: str
) -> None:
    response = await client.post(
        "/api/rag-chat",
        json={"user_message": "quantum chromodynamics lattice", "session_id": session},
    )

    assert response.text == NOTHING_RELEVANT
    assert chat_requests(upstream) == []


async def test_use_rag_false_is_a_plain_chat(
    client: httpx.AsyncClient, upstream: FakeOpenAI, session: str
) -> None:
    await client.post(
        "/api/rag-chat",
        json={"user_message": "rocket engine?", "session_id": session, "use_rag": False},
    )

    (sent,) = chat_requests(upstream)
    assert "Source:" not in json.dumps(sent["messages"])
    assert sent["messages"][-1] == {"role": "user", "content": "rocket engine?"}


async def test_chat_with_a_session_id_answers_from_its_documents(
    client: httpx.AsyncClient, upstream: FakeOpenAI, session: str
) -> None:
    await client.post(
        "/api/chat",
        json={
            "developer_message": "Answer in French.",
            "user_message": "What does the rocket engine burn?",
            "session_id": session,
        },
    )

    instructions, question = chat_requests(upstream)[0]["messages"]
    assert instructions["content"].startswith("Answer in French.")
    assert "[Source: engines.txt]" in question["content"]


@pytest.mark.parametrize("route", ["/api/rag-chat", "/api/chat"])
async def test_unknown_session_is_404(client: httpx.AsyncClient, route: str) -> None:
    body = {"user_message": "hi", "session_id": "nope", "developer_message": "x"}

    response = await client.post(route, json=body)

    assert response.status_code == 404
    assert response.json() == {"detail": "Session not found: nope"}


async def test_a_session_without_documents_is_400(client: httpx.AsyncClient) -> None:
    await client.post("/api/collections", json={"name": "empty", "id": "empty"})

    response = await client.post(
        "/api/rag-chat", json={"user_message": "hi", "session_id": "empty"}
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Session empty has no documents: upload one first"}


async def test_errors_before_the_first_byte_are_json_in_sse_mode_too(
    client: httpx.AsyncClient, upstream: FakeOpenAI, session: str
) -> None:
    upstream.fail_next(429, retry_after="3", path="chat")

    response = await client.post(
        "/api/rag-chat",
        json={"user_message": "rocket engine kerosene", "session_id": session},
        headers=SSE,
    )

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert "rate limiting" in response.json()["detail"]


async def test_plain_chat_can_stream_events_too(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    response = await client.post(
        "/api/chat", json={"developer_message": "x", "user_message": "y"}, headers=SSE
    )

    events = parse_events(response.text)
    assert events[0] == ("sources", {"sources": []})
    assert events[-1][0] == "done"
