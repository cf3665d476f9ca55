"""Service authentication and the security headers every response carries.

Both are plain ASGI middleware rather than route dependencies, so nothing a
route forgets can open a hole, and streamed responses (chat, SSE) are covered
the same way as JSON ones.
"""

import hmac
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Load balancers and orchestrators probe health without credentials.
OPEN_PATHS = frozenset({"/api/health"})
SECURITY_SCHEME = "serviceKey"
MISSING_OR_INVALID_KEY = "missing or invalid API key: send 'Authorization: Bearer <key>'"

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    # API responses hold users' documents: no shared cache may keep them.
    "cache-control": "no-store",
}
# The API returns JSON and text, never pages: nothing may load or frame it.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs and /redoc pages load their scripts from a CDN.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


class ServiceAuth:
    """With `RAGSTORE_API_KEYS` set, every route but health needs `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, api_keys: list[str]) -> None:
        self.app = app
        self.api_keys = [key.encode() for key in api_keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"detail": MISSING_OR_INVALID_KEY},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, presented = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        candidate = presented.strip().encode()
        # compare_digest against every key, without stopping at a match, so the time
        # taken says nothing about which key (or how much of one) was right.
        matches = [hmac.compare_digest(candidate, key) for key in self.api_keys]
        return any(matches)


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope["path"] in DOCS_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not is_docs:
                    headers.setdefault("content-security-policy", API_CONTENT_SECURITY_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def document_service_auth(app: FastAPI) -> None:
    """Make /openapi.json say what ServiceAuth enforces: a bearer scheme and a 401 on
    every operation but health, so generated clients send the key."""
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build_schema()  # FastAPI caches it: the additions below happen once
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        if SECURITY_SCHEME in schemes:
            return schema
        schemes[SECURITY_SCHEME] = {"type": "http", "scheme": "bearer"}
        refused = {
            "description": "No valid service key (`Authorization: Bearer <key>`)",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        }
        for path, operations in schema["paths"].items():
            if path in OPEN_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{SECURITY_SCHEME: []}]
                operation.setdefault("responses", {}).setdefault("401", refused)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
