"""Floors for benchmark 4's "HTTP adds" column: what any route costs, before ragstore's own work.

A FastAPI app served by uvicorn in its own process, the way `ragstore serve`
runs (same uvicorn defaults, warnings-only logging), with two search routes
that validate the same request model and answer through the same response
model:

- `/floor/static/search`: a fixed, real search response; no database, no
  embedding, no search. What any Python HTTP route returning those results
  costs on this machine, whatever the database does.
- `/floor/database/search`: the design's stack and nothing else. A read
  session from ragstore's own `Database` (same pool, pre-ping, autocommit)
  runs the repository's vector statement for the question's vector (given,
  not embedded) and the rows become the response. No middleware, no
  service, no query cache. What a FastAPI + async SQLAlchemy route running
  that statement costs, at the least.

    python -m bench.http_floor --port 8001
        (RAGSTORE_BENCH_FLOOR_BODY=<response.json>, and for the database route
         DATABASE_URL and RAGSTORE_BENCH_FLOOR_VECTORS=<{question: vector}.json>)
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

import numpy as np
import uvicorn
from fastapi import FastAPI, Request

from app.core.config import Settings
from app.db.database import Database
from app.search.repository import SearchPlan, SearchRepository
from app.search.schemas import SearchRequest, SearchResponse, SearchResult
from bench.common import ServerURL, serving


def create_app() -> FastAPI:
    response = SearchResponse.model_validate_json(
        Path(os.environ["RAGSTORE_BENCH_FLOOR_BODY"]).read_text()
    )
    vectors_file = os.environ.get("RAGSTORE_BENCH_FLOOR_VECTORS")
    given = json.loads(Path(vectors_file).read_text()) if vectors_file else {}
    vectors = {question: np.asarray(vector, np.float32) for question, vector in given.items()}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = Settings()  # type: ignore[call-arg]
        app.state.database = Database(settings.database_url, settings, None) if vectors else None
        try:
            yield
        finally:
            if app.state.database is not None:
                await app.state.database.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/floor/static/{collection_id}/search")
    async def static_search(collection_id: str, body: SearchRequest) -> SearchResponse:
        return response

    @app.post("/floor/database/{collection_id}/search")
    async def database_search(
        collection_id: str, body: SearchRequest, request: Request
    ) -> SearchResponse:
        query = SearchPlan(collection_id=collection_id, k=body.k, vector=vectors[body.query])
        async with request.app.state.database.read_session() as session:
            rows = await SearchRepository(session).vector(query)
        return SearchResponse(
            query=body.query,
            mode=body.mode,
            results=[
                SearchResult(
                    chunk_id=row.id,
                    document_id=row.document_id,
                    filename=row.filename,
                    text=row.text,
                    score=row.score,
                    metadata=row.metadata,
                )
                for row in rows
            ],
        )

    return app


@asynccontextmanager
async def http_floor(
    response_body: dict[str, Any],
    database_url: str | None = None,
    vectors: dict[str, list[float]] | None = None,
) -> AsyncIterator[ServerURL]:
    """The floor server: `response_body` from the static route, and with `database_url`
    and `vectors` (question -> embedding) the database route; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="ragstore-floor-") as directory:
        body_file = Path(directory) / "response.json"
        body_file.write_text(json.dumps(response_body))
        environment = {"RAGSTORE_BENCH_FLOOR_BODY": str(body_file)}
        if database_url and vectors:
            vectors_file = Path(directory) / "vectors.json"
            vectors_file.write_text(json.dumps(vectors))
            environment |= {
                "DATABASE_URL": database_url,
                "RAGSTORE_BENCH_FLOOR_VECTORS": str(vectors_file),
            }
        command = [sys.executable, "-m", "bench.http_floor"]
        async with serving(command, **environment) as url:
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
