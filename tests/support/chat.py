"""Reading chat answers as the clients see them, and the prompts the fake upstream got."""

import json
from typing import Any

from tests.support.fake_openai import FakeOpenAI

SSE = {"accept": "text/event-stream"}


def chat_requests(upstream: FakeOpenAI) -> list[dict[str, Any]]:
    """The bodies of the chat completion requests the upstream received, in order."""
    return [request.body for request in upstream.requests if request.path == "chat"]


def parse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """A server-sent event stream as (event name, decoded data) pairs; comments skipped."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events
