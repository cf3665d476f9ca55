import httpx

from tests.support.servers import serve_app
from tests.support.settings import base_settings


async def test_health_reports_ok_with_the_database_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["embedding_model"] == "text-embedding-3-small"


async def test_health_is_503_with_a_reason_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 1 of loopback: connections are refused at once.
    settings = base_settings(database_url="postgresql://nobody@127.0.0.1:1/none")
    async with serve_app(settings) as client:
        response = await client.get("/api/health")
        again = await client.get("/api/health")

    assert response.status_code == 503
    assert response.json()["detail"].startswith("database unreachable")
    assert again.status_code == 503, "the server keeps serving through the outage"
