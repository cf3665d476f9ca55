"""Optional service authentication (RAGSTORE_API_KEYS) and the security headers."""

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.core.middleware import MISSING_OR_INVALID_KEY
from tests.support.db import scalar
from tests.support.servers import serve_app
from tests.support.settings import base_settings
from tests.support.uploads import PROSE, upload

KEYS = ("first-service-key-1234", "second-service-key-5678")
BROWSER_ORIGIN = "https://chat.example"
CHAT = {"developer_message": "Be brief.", "user_message": "Hello"}


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A server with two service keys and one allowed browser origin; the client sends none."""
    guarded_settings = settings.model_copy(
        update={"api_keys": [SecretStr(key) for key in KEYS], "cors_origins": [BROWSER_ORIGIN]}
    )
    async with serve_app(guarded_settings) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong-key"),
        bearer(KEYS[0][:-1]),
        bearer(KEYS[0] + "x"),
        {"Authorization": f"Basic {KEYS[0]}"},
        {"Authorization": KEYS[0]},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "prefix", "longer", "basic", "no-scheme", "empty"],
)
async def test_without_a_valid_key_every_route_is_401(
    guarded: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    requests = [
        ("GET", "/api/collections", None),
        ("POST", "/api/chat", CHAT),
        ("POST", "/api/search", {"query": "x"}),
        ("GET", "/api/jobs/00000000-0000-0000-0000-000000000000", None),
        ("GET", "/no/such/route", None),
    ]
    for method, path, body in requests:
        response = await guarded.request(method, path, json=body, headers=headers)

        assert response.status_code == 401, response.request.url
        assert response.json() == {"detail": MISSING_OR_INVALID_KEY}
        assert response.headers["www-authenticate"] == "Bearer"


async def test_either_configured_key_opens_every_route(guarded: httpx.AsyncClient) -> None:
    for key in KEYS:
        collections = await guarded.get("/api/collections", headers=bearer(key))
        chat = await guarded.post("/api/chat", json=CHAT, headers=bearer(key))

        assert collections.status_code == 200
        assert chat.status_code == 200
        assert chat.text  # the streamed answer


async def test_health_needs_no_key(guarded: httpx.AsyncClient) -> None:
    response = await guarded.get("/api/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_an_unauthenticated_upload_stores_nothing(
    guarded: httpx.AsyncClient, db: AsyncConnection
) -> None:
    response = await upload(guarded, PROSE, session_id="s")

    assert response.status_code == 401
    assert await scalar(db, "SELECT count(*) FROM documents") == 0
    assert await scalar(db, "SELECT count(*) FROM collections") == 0


async def test_an_authenticated_upload_is_stored(
    guarded: httpx.AsyncClient, db: AsyncConnection
) -> None:
    guarded.headers.update(bearer(KEYS[1]))

    response = await upload(guarded, PROSE, session_id="s")

    assert response.status_code == 200, response.text
    assert await scalar(db, "SELECT count(*) FROM documents WHERE status = 'completed'") == 1


async def test_browsers_get_cors_on_preflight_and_on_a_401(guarded: httpx.AsyncClient) -> None:
    # A preflight never carries credentials, so it must not need them.
    preflight = await guarded.options(
        "/api/chat",
        headers={
            "Origin": BROWSER_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    refused = await guarded.post("/api/chat", json=CHAT, headers={"Origin": BROWSER_ORIGIN})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == BROWSER_ORIGIN
    # The front end can read the 401's detail only if CORS headers come with it.
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == BROWSER_ORIGIN


async def test_without_keys_configured_no_authorization_is_needed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/chat", json=CHAT)

    assert response.status_code == 200
    assert response.text


def test_keys_are_read_comma_separated_and_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSTORE_API_KEYS", f" {KEYS[0]} ,{KEYS[1]},")

    settings = base_settings()

    assert [key.get_secret_value() for key in settings.api_keys] == list(KEYS)
    assert KEYS[0] not in repr(settings)
    assert set(KEYS) <= set(settings.secrets())


async def test_service_keys_never_reach_the_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    guarded_settings = settings.model_copy(update={"api_keys": [SecretStr(KEYS[0])]})
    async with serve_app(guarded_settings) as client:
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("ragstore.test").warning("presented %s", KEYS[0])
            await client.get("/api/collections", headers=bearer(KEYS[0]))

    messages = [record.getMessage() for record in caplog.records]
    assert "presented [REDACTED]" in messages
    assert not [message for message in messages if KEYS[0] in message]


# --- security headers ---------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    responses = [
        await client.get("/api/health"),
        await client.get("/api/collections"),
        await client.get("/api/collections/nope"),
        await client.post("/api/chat", json=CHAT),
        await client.post("/api/chat", json={}),
    ]
    for response in responses:
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", response.request.url
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_the_docs_page_may_load_its_scripts(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert "content-security-policy" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_openapi_schema_documents_the_bearer_key(guarded: httpx.AsyncClient) -> None:
    """The schema itself needs no key (so /docs renders), and says every operation does."""
    schema = (await guarded.get("/openapi.json")).json()

    assert schema["components"]["securitySchemes"]["serviceKey"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert "ErrorResponse" in schema["components"]["schemas"]
    chat = schema["paths"]["/api/chat"]["post"]
    assert chat["security"] == [{"serviceKey": []}]
    assert "401" in chat["responses"]
    health = schema["paths"]["/api/health"]["get"]
    assert "security" not in health
    assert "401" not in health["responses"]


async def test_without_keys_the_schema_asks_for_none(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    assert "securitySchemes" not in schema["components"]
    assert "security" not in schema["paths"]["/api/chat"]["post"]
