import asyncio
import logging
import threading

import httpx
import pytest

from app.core.config import Settings
from tests.support.chat import parse_events
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import serve_app
from tests.support.settings import SERVER_KEY, base_settings

CHAT = {"developer_message": "You are terse.", "user_message": "Say hello"}


async def test_chat_streams_the_model_tokens_as_plain_text(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    upstream.chat_tokens = ["The", " answer", " is", " 42", "."]

    async with client.stream("POST", "/api/chat", json=CHAT) as response:
        pieces = [piece async for piece in response.aiter_text()]

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "".join(pieces) == "The answer is 42."


async def test_chat_sends_the_original_message_roles_and_default_model(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await client.post("/api/chat", json=CHAT)

    (request,) = upstream.requests
    assert request.body["model"] == "gpt-4.1-mini"
    assert request.body["stream"] is True
    assert request.body["messages"] == [
        {"role": "developer", "content": "You are terse."},
        {"role": "user", "content": "Say hello"},
    ]
    assert request.authorization == f"Bearer {SERVER_KEY}"


async def test_chat_uses_the_model_and_key_of_the_request(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await client.post("/api/chat", json={**CHAT, "model": "gpt-4o", "api_key": "request-key-1"})

    (request,) = upstream.requests
    assert request.body["model"] == "gpt-4o"
    assert request.authorization == "Bearer request-key-1"


async def test_first_tokens_arrive_before_the_upstream_has_finished(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    release = threading.Event()
    upstream.hold_stream_after_first_token = release
    upstream.chat_tokens = ["first", " second", " third"]

    async with client.stream("POST", "/api/chat", json=CHAT) as response:
        stream = response.aiter_text()
        first = await asyncio.wait_for(anext(stream), timeout=10)
        upstream_finished_before_first_token = upstream.stream_finished.is_set()
        release.set()
        rest = "".join([piece async for piece in stream])

    assert first == "first"
    assert not upstream_finished_before_first_token
    assert rest == " second third"


async def test_invalid_body_is_422_with_a_readable_detail(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/chat", json={"developer_message": "x"})

    assert response.status_code == 422
    assert response.json()["detail"] == "body.user_message: Field required"


async def test_no_key_anywhere_is_401(upstream: FakeOpenAI, database_url: str) -> None:
    settings = base_settings(database_url=database_url, openai_base_url=upstream.url)
    async with serve_app(settings) as client:
        response = await client.post("/api/chat", json=CHAT)

    assert response.status_code == 401
    assert "OPENAI_API_KEY" in response.json()["detail"]
    assert upstream.requests == []


async def test_a_key_the_provider_rejects_is_401_and_never_echoed(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    upstream.valid_keys = {SERVER_KEY}
    secret = "request-secret-abcdef123456"

    response = await client.post("/api/chat", json={**CHAT, "api_key": secret})

    assert response.status_code == 401
    assert response.json() == {"detail": "the model provider rejected the API key"}
    assert secret[:6] not in response.text and secret[-4:] not in response.text


@pytest.mark.parametrize(
    ("upstream_status", "expected_status"),
    [(429, 429), (500, 502), (503, 502), (404, 400)],
)
async def test_upstream_errors_map_to_a_fitting_status(
    client: httpx.AsyncClient, upstream: FakeOpenAI, upstream_status: int, expected_status: int
) -> None:
    upstream.fail_next(upstream_status, message="The model `nope` does not exist")

    response = await client.post("/api/chat", json=CHAT)

    assert response.status_code == expected_status
    assert isinstance(response.json()["detail"], str)


async def test_rate_limit_passes_retry_after_on(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    upstream.fail_next(429, retry_after="7")

    response = await client.post("/api/chat", json=CHAT)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert "rate limiting" in response.json()["detail"]


async def test_upstream_refusal_message_is_shown(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    upstream.fail_next(404, message="The model `nope` does not exist")

    response = await client.post("/api/chat", json={**CHAT, "model": "nope"})

    assert response.json()["detail"] == (
        "the model provider refused the request (404): The model `nope` does not exist"
    )


async def _chat_with(settings: Settings) -> httpx.Response:
    async with serve_app(settings) as client:
        return await client.post("/api/chat", json=CHAT)


async def test_a_slow_upstream_is_504(settings: Settings, upstream: FakeOpenAI) -> None:
    upstream.response_delay = 2.0

    response = await _chat_with(settings.model_copy(update={"upstream_timeout_seconds": 0.3}))

    assert response.status_code == 504
    assert response.json() == {"detail": "the model provider did not answer in time"}


async def test_an_unreachable_upstream_is_502(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"openai_base_url": "http://127.0.0.1:1/v1"})

    response = await _chat_with(unreachable)

    assert response.status_code == 502
    assert response.json() == {"detail": "could not reach the model provider"}


async def test_request_keys_never_reach_the_logs(
    settings: Settings, upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "request-secret-zyxw987654"
    upstream.fail_next(500)
    debug_settings = settings.model_copy(update={"log_level": "DEBUG"})

    async with serve_app(debug_settings) as client:
        await client.post("/api/chat", json={**CHAT, "api_key": secret})
        await client.post("/api/chat", json={**CHAT, "api_key": secret})

    assert len(upstream.requests) == 2
    assert caplog.records, "the requests were logged"
    assert secret not in caplog.text
    assert SERVER_KEY not in caplog.text


@pytest.mark.parametrize("events", [False, True], ids=["text", "sse"])
@pytest.mark.parametrize(
    ("breakage", "before_break"),
    [("connection_dropped", "one two"), ("malformed_json", ""), ("stalled", "one")],
)
async def test_a_stream_that_breaks_mid_answer_is_logged_and_ends_without_hanging(
    settings: Settings,
    upstream: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    events: bool,
    breakage: str,
    before_break: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="app.llm.streaming")
    upstream.chat_tokens = ["one", " two", " three"]
    stalled_upstream = threading.Event()
    if breakage == "connection_dropped":
        upstream.break_stream_after = 2
    elif breakage == "malformed_json":
        upstream.fail_randomly(1.0, ["malformed_json"], paths=["chat"])
    else:
        upstream.hold_stream_after_first_token = stalled_upstream
    quick = settings.model_copy(update={"upstream_timeout_seconds": 1.0})
    headers = {"accept": "text/event-stream"} if events else {}

    # A request that hangs fails the test at this timeout instead of stalling the suite.
    async with serve_app(quick, client_timeout=10) as client:
        async with client.stream("POST", "/api/chat", json=CHAT, headers=headers) as response:
            body = "".join([piece async for piece in response.aiter_text()])
        health = await client.get("/api/health")
    stalled_upstream.set()

    assert response.status_code == 200
    if events:
        parsed = parse_events(body)
        assert [name for name, _ in parsed][-1] == "error"
        assert "broke off" in parsed[-1][1]["detail"]
        tokens = "".join(data["text"] for name, data in parsed if name == "token")
        assert tokens == before_break
    else:
        assert body == before_break
    assert "chat stream broke off" in caplog.text
    assert health.status_code == 200
