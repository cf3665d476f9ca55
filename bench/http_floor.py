"""The HTTP layer alone, as a floor for benchmark 4's "HTTP adds" column.

A FastAPI app served by uvicorn in its own process, the way `ragstore serve`
runs (same uvicorn defaults, warnings-only logging), whose search route
validates the same request model and answers a fixed, real search response
through the same response model: no database, no embedding, no search. What
it costs is what any Python HTTP route returning those results costs on this
machine, whatever the database does.

    python -m bench.http_floor --port 8001   (RAGSTORE_BENCH_FLOOR_BODY=<response.json>)
"""

import argparse
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.search.schemas import SearchRequest, SearchResponse
from bench.common import ServerURL, serving


def create_app() -> FastAPI:
    response = SearchResponse.model_validate_json(
        Path(os.environ["RAGSTORE_BENCH_FLOOR_BODY"]).read_text()
    )
    app = FastAPI()

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/collections/{collection_id}/search")
    async def search(collection_id: str, body: SearchRequest) -> SearchResponse:
        return response

    return app


@asynccontextmanager
async def http_floor(response_body: dict[str, Any]) -> AsyncIterator[ServerURL]:
    """The floor server answering `response_body` to every search; yields its base URL."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body_file:
        json.dump(response_body, body_file)
        body_file.flush()
        command = [sys.executable, "-m", "bench.http_floor"]
        async with serving(command, RAGSTORE_BENCH_FLOOR_BODY=body_file.name) as url:
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(
        "bench.http_floor:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
