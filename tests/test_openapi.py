import re

import httpx


async def test_docs_and_redoc_are_served_with_local_assets(client: httpx.AsyncClient) -> None:
    """Offline: every script and style the pages load is served by ragstore itself."""
    for path in ("/docs", "/redoc"):
        response = await client.get(path)
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]
        assets = re.findall(r'(?:src|href)=["\']([^"\']+\.(?:js|css))["\']', response.text)
        assert assets, response.text
        assert not [a for a in assets if "://" in a or a.startswith("//")], assets
        for asset in assets:
            served = await client.get(asset)
            assert served.status_code == 200, asset
            assert served.headers["content-type"].startswith(("text/javascript", "text/css"))
            assert len(served.content) > 10_000


async def test_every_route_has_a_summary_and_a_description(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert operations
    for operation in operations:
        assert operation.get("summary"), operation
        assert operation.get("description"), operation


async def test_chat_request_is_a_typed_model(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    chat = schema["components"]["schemas"]["ChatRequest"]
    assert set(chat["required"]) == {"developer_message", "user_message"}


async def test_every_error_response_documents_the_detail_body(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                body = response["content"]["application/json"]["schema"]["$ref"]
                expected = "ValidationErrorResponse" if status == "422" else "ErrorResponse"
                if path.startswith("/v1/"):
                    # The OpenAI-compatible face answers with OpenAI's error body.
                    expected = "OpenAIErrorResponse"
                assert body == f"#/components/schemas/{expected}", (method, path, status)
