"""OpenAPI additions: what the middleware enforces, said in /openapi.json."""

from typing import Any

from fastapi import FastAPI

from app.core.middleware import OPEN_PATHS

SECURITY_SCHEME = "serviceKey"


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
