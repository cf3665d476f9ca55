"""Every answer of the OpenAI-compatible face parsed with the official SDK's own types.

The SDK builds its objects without validation, so a missing field would pass
unseen; this HTTP client (the SDK's transport, `httpx2`) validates each JSON
answer with `model_validate` against the type the SDK expects for its route,
and records what it checked, so a test can assert that every route was seen.
"""

import re
from typing import Any

import httpx2
from openai.types import FileDeleted, FileObject, VectorStore, VectorStoreDeleted
from openai.types.vector_store_search_response import VectorStoreSearchResponse
from openai.types.vector_stores import (
    FileContentResponse,
    VectorStoreFile,
    VectorStoreFileBatch,
    VectorStoreFileDeleted,
)
from pydantic import BaseModel

_ID = r"[^/]+"
# (method, path under /v1, the type of the object or of each item of `data`, is a list)
_ROUTES: list[tuple[str, str, type[BaseModel], bool]] = [
    ("POST", r"/files", FileObject, False),
    ("GET", r"/files", FileObject, True),
    ("GET", rf"/files/{_ID}", FileObject, False),
    ("DELETE", rf"/files/{_ID}", FileDeleted, False),
    ("POST", r"/vector_stores", VectorStore, False),
    ("GET", r"/vector_stores", VectorStore, True),
    ("GET", rf"/vector_stores/{_ID}", VectorStore, False),
    ("POST", rf"/vector_stores/{_ID}", VectorStore, False),
    ("DELETE", rf"/vector_stores/{_ID}", VectorStoreDeleted, False),
    ("POST", rf"/vector_stores/{_ID}/files", VectorStoreFile, False),
    ("GET", rf"/vector_stores/{_ID}/files", VectorStoreFile, True),
    ("GET", rf"/vector_stores/{_ID}/files/{_ID}", VectorStoreFile, False),
    ("POST", rf"/vector_stores/{_ID}/files/{_ID}", VectorStoreFile, False),
    ("DELETE", rf"/vector_stores/{_ID}/files/{_ID}", VectorStoreFileDeleted, False),
    ("GET", rf"/vector_stores/{_ID}/files/{_ID}/content", FileContentResponse, True),
    ("POST", rf"/vector_stores/{_ID}/file_batches", VectorStoreFileBatch, False),
    ("GET", rf"/vector_stores/{_ID}/file_batches/{_ID}", VectorStoreFileBatch, False),
    ("POST", rf"/vector_stores/{_ID}/file_batches/{_ID}/cancel", VectorStoreFileBatch, False),
    ("GET", rf"/vector_stores/{_ID}/file_batches/{_ID}/files", VectorStoreFile, True),
    ("POST", rf"/vector_stores/{_ID}/search", VectorStoreSearchResponse, True),
]


class ShapeChecker:
    def __init__(self) -> None:
        self.checked: set[str] = set()

    async def __call__(self, response: httpx2.Response) -> None:
        if response.status_code >= 400 or "json" not in response.headers.get("content-type", ""):
            return
        await response.aread()
        path = response.request.url.path.removeprefix("/v1")
        for method, pattern, model, is_list in _ROUTES:
            if response.request.method == method and re.fullmatch(pattern, path):
                body: Any = response.json()
                for item in body["data"] if is_list else [body]:
                    # Raises on a missing required field or a value of the wrong type.
                    model.model_validate(item)
                self.checked.add(f"{method} {pattern}")
                return
        raise AssertionError(f"no SDK type known for {response.request.method} {path}")

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(event_hooks={"response": [self]}, timeout=30)
