"""The served app times out request headers that never finish (a slow-loris client):
408 for a partial request, a plain close for a connection that sends nothing, and
neither for a request whose headers arrived, however long it then takes."""

import asyncio
import socket
import time

from app.core.config import Settings
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import serve_app

HEALTH = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"


def _answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while block := connection.recv(65536):
        received += block
    return received


def send_then_wait(port: int, *parts: bytes) -> tuple[bytes, float]:
    """Send `parts` a little apart, then read until the server closes; the answer and how
    long after the last part the close came."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        for part in parts:
            connection.sendall(part)
            time.sleep(0.1)
        sent = time.monotonic()
        return _answer(connection), time.monotonic() - sent


async def test_headers_that_stop_arriving_are_answered_408(settings: Settings) -> None:
    quick = settings.model_copy(update={"request_header_timeout_seconds": 1.0})
    async with serve_app(quick) as client:
        port = client.base_url.port
        assert port is not None
        answer, waited = await asyncio.to_thread(
            send_then_wait, port, b"GET /api/health HTTP/1.1\r\n", b"Host: x\r\nX-Slow: 1"
        )
        health = await client.get("/api/health")

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert b'{"detail": "the request headers did not arrive within 1 s"}' in rest
    assert waited < 5
    assert health.status_code == 200


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    settings: Settings,
) -> None:
    quick = settings.model_copy(update={"request_header_timeout_seconds": 1.0})
    async with serve_app(quick) as client:
        port = client.base_url.port
        assert port is not None
        answer, waited = await asyncio.to_thread(send_then_wait, port)

    assert answer == b""
    assert waited < 5


async def test_the_deadline_starts_again_for_each_request_of_a_connection(
    settings: Settings,
) -> None:
    """A kept-alive connection answers its first request, then times out the second,
    whose headers never finish."""
    quick = settings.model_copy(update={"request_header_timeout_seconds": 1.0})
    async with serve_app(quick) as client:
        port = client.base_url.port
        assert port is not None
        # Past the first deadline before the second request begins, but within keep-alive.
        answer, _ = await asyncio.to_thread(
            send_then_wait, port, HEALTH, b"", b"", b"GET /api/health HTTP/1.1\r\nHo"
        )

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 408 Request Timeout" in answer


async def test_a_request_whose_headers_arrived_may_take_longer_than_the_deadline(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    upstream.token_delay = 0.4  # four tokens: the answer streams for about 1.6 s
    quick = settings.model_copy(update={"request_header_timeout_seconds": 0.5})
    async with serve_app(quick) as client:
        answer = await client.post(
            "/api/chat", json={"developer_message": "Be terse.", "user_message": "Hi"}
        )

    assert answer.status_code == 200
    assert answer.text == "Hello, world!"
