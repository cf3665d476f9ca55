"""A request's own provider key: refused where it arrives if no HTTP header can carry it."""

from typing import Any

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.uploads import PROSE

DETAIL = "api_key: Value error, an API key has printable ASCII characters only"


def _json(route: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"route": route, "json": body}


def _form(route: str) -> dict[str, Any]:
    return {"route": route, "files": {"file": ("notes.txt", PROSE.encode())}}


REQUESTS = {
    "chat": _json("/api/chat", {"developer_message": "Be brief.", "user_message": "Hi"}),
    "rag-chat": _json("/api/rag-chat", {"session_id": "s", "user_message": "Hi"}),
    "search": _json("/api/search", {"session_id": "s", "query": "vector"}),
    "collection search": _json("/api/collections/s/search", {"query": "vector"}),
    "upload": _form("/api/upload-document"),
    "collection upload": _form("/api/collections/s/documents"),
}


@pytest.mark.parametrize("key", ["sk-ключ-1234", "sk-line\r\nX-Injected: 1"])
@pytest.mark.parametrize("name", REQUESTS)
async def test_a_key_no_header_can_carry_is_422_and_nothing_goes_upstream(
    client: httpx.AsyncClient, upstream: FakeOpenAI, name: str, key: str
) -> None:
    request = dict(REQUESTS[name])
    route = request.pop("route")
    if "json" in request:
        request["json"] = {**request["json"], "api_key": key}
    else:
        request["data"] = {"api_key": key}

    response = await client.post(route, **request)

    assert response.status_code == 422, response.text
    assert response.json()["detail"] == f"body.{DETAIL}"
    assert key not in response.text
    assert upstream.requests == []
