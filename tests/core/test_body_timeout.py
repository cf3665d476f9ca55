"""A client that sends its headers and then stalls the body is answered 408, and the
server goes on serving."""

import asyncio
import socket

from app.core.config import Settings
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import serve_app


def stalled_upload(port: int) -> bytes:
    """Headers and the start of a multipart body that promises 100 KB, then silence."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            b"POST /api/upload-document HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n--b\r\n"
        )
        return connection.recv(65536)


async def test_a_stalled_request_body_is_answered_408(settings: Settings) -> None:
    quick = settings.model_copy(update={"request_body_timeout_seconds": 1.0})
    async with serve_app(quick) as client:
        port = client.base_url.port
        assert port is not None
        answer = await asyncio.to_thread(stalled_upload, port)
        health = await client.get("/api/health")

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert b'"detail":"the request body stalled: nothing arrived for 1 s"' in rest
    assert health.status_code == 200


async def test_a_response_that_streams_longer_than_the_body_timeout_is_not_cut(
    settings: Settings, upstream: FakeOpenAI
) -> None:
    """Only the body is timed: a streamed answer waits on `receive` for a disconnect
    the whole time it streams, and must not be cut off after the timeout."""
    upstream.token_delay = 0.4  # four tokens: the answer streams for about 1.6 s
    quick = settings.model_copy(update={"request_body_timeout_seconds": 0.5})
    async with serve_app(quick) as client:
        answer = await client.post(
            "/api/chat", json={"developer_message": "Be terse.", "user_message": "Hi"}
        )

    assert answer.status_code == 200
    assert answer.text == "Hello, world!"
