"""OpenAI keys are never stored, logged or echoed: neither a key a request brings
(`api_key` of chat, rag-chat, search and uploads) nor the server's own.

Each test sends a series of requests that use the key, including failures where
the upstream quotes the key back in its error message, while a handler records
every log record at DEBUG from every logger: the root logger (where the app's,
openai's, httpx's, SQLAlchemy's and procrastinate's records go) and uvicorn's
own loggers, which do not propagate to the root. Then the key is looked for in
every formatted log line (tracebacks included), in every response body and
header, and in every row of every table.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from tests.support.chat import SSE, chat_requests
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import app_server
from tests.support.settings import SERVER_KEY
from tests.support.uploads import long_text, upload

# Not `sk-` shaped on purpose: OpenAI-compatible providers (Azure, vLLM, LiteLLM
# proxies) issue keys of any shape, so the app must not lean on the `sk-` pattern
# its log filter also scrubs.
REQUEST_KEY = "proxy-key-Q7wX2mZ9pL4vT8nR"
QUESTION = "HNSW indexes build a multilayer graph: is their query performance better than IVFFlat?"
CHAT = {"developer_message": "You are terse.", "user_message": "Say hello."}
# uvicorn's loggers keep their own handlers and do not propagate to the root
# (uvicorn.error propagates to uvicorn).
UVICORN_LOGGERS = ("uvicorn", "uvicorn.access")


class CapturedLogs(logging.Handler):
    """Every record at DEBUG, formatted as a log file would hold it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self.logger_names: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        # format() appends the traceback of exc_info and any stack_info.
        self.lines.append(self.format(record))
        self.logger_names.add(record.name)


@dataclass(frozen=True)
class Observed:
    client: httpx.AsyncClient
    logs: CapturedLogs
    responses: list[httpx.Response]


@asynccontextmanager
async def observed_app(settings: Settings) -> AsyncIterator[Observed]:
    """The app at DEBUG, every log record and every response it gave recorded.

    The capturing handler is on the root logger before the app starts, as a
    deployment's log handler is, so the app's own log filter applies to it;
    on uvicorn's loggers the app has no filter, and there it sees what uvicorn
    writes.
    """
    logs = CapturedLogs()
    touched = [logging.getLogger(name) for name in ("", *UVICORN_LOGGERS, "uvicorn.error")]
    levels = [logger.level for logger in touched]
    logging.getLogger().addHandler(logs)
    # Building the server (re)configures uvicorn's loggers, replacing their handlers.
    server = app_server(settings.model_copy(update={"log_level": "DEBUG"}), log_level="debug")
    for name in UVICORN_LOGGERS:
        logging.getLogger(name).addHandler(logs)
    responses: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        responses.append(response)

    try:
        with server:
            async with httpx.AsyncClient(
                base_url=server.url, timeout=30, event_hooks={"response": [keep]}
            ) as client:
                yield Observed(client, logs, responses)
    finally:
        for logger, level in zip(touched, levels, strict=True):
            logger.removeHandler(logs)
            logger.setLevel(level)


async def table_rows(db: AsyncConnection) -> dict[str, list[str]]:
    """Every row of every table in the public schema, as PostgreSQL prints it."""
    tables = (
        await db.execute(
            text("SELECT format('%I', tablename) FROM pg_tables WHERE schemaname = 'public'")
        )
    ).scalars()
    rows = {
        table: list((await db.execute(text(f"SELECT t::text FROM {table} t"))).scalars())
        for table in tables.all()
    }
    await db.commit()
    return rows


async def assert_never_shown_or_kept(secret: str, seen: Observed, db: AsyncConnection) -> None:
    leaked_logs = [line for line in seen.logs.lines if secret in line]
    assert leaked_logs == [], "the key reached the logs"
    for response in seen.responses:
        where = f"{response.request.method} {response.request.url.path}"
        assert secret not in response.text, f"the body of {where} holds the key"
        assert secret not in str(response.headers.multi_items()), f"a header of {where}"
    tables = await table_rows(db)
    assert tables["chunks"] and tables["document_files"], "the series stored nothing to search"
    # bytea columns (stored upload files) print as hex.
    forms = (secret, secret.encode().hex())
    for table, rows in tables.items():
        assert not [row for row in rows if any(form in row for form in forms)], f"rows of {table}"


def quoting(key: str) -> str:
    """An upstream error message that quotes the whole key, as some proxies do."""
    return f"Incorrect API key provided: {key}. You can find your API key at example.com."


async def send_series(client: httpx.AsyncClient, upstream: FakeOpenAI, api_key: str | None) -> None:
    """Upload, search and chat every way the API allows, with `api_key` (or the server's
    key, when None), including failures whose upstream message quotes the key in use."""
    key = api_key or SERVER_KEY
    with_key = {"api_key": api_key} if api_key else {}

    async def expect(status: int, call: Awaitable[httpx.Response]) -> httpx.Response:
        response = await call
        assert response.status_code == status, response.text
        return response

    def upload_to(route: str, filename: str, **form: object) -> Awaitable[httpx.Response]:
        # Content of its own, so the processed-document cache cannot spare the embedding.
        content = f"{filename}\n\n{long_text(3)}"
        return upload(client, content, filename, route, **with_key, **form)

    def post(path: str, body: Mapping[str, object], sse: bool = False) -> Awaitable[httpx.Response]:
        return client.post(path, json={**body, **with_key}, headers=SSE if sse else None)

    await expect(200, upload_to("/api/upload-document", "original.txt", session_id="vault"))
    await expect(201, upload_to("/api/collections/vault/documents", "resource.txt"))
    if api_key:
        # Background uploads refuse a request key rather than keep it for the worker.
        await expect(400, upload_to("/api/collections/vault/documents?wait=false", "later.txt"))
    await expect(422, upload_to("/api/upload-document", "bad.txt", chunk_size=10, chunk_overlap=20))
    upstream.fail_next(401, message=quoting(key), path="embeddings")
    await expect(401, upload_to("/api/upload-document", "refused.txt", session_id="vault"))
    # Every attempt fails: the document is kept as failed, with the reason.
    upstream.fail_next(500, times=3, message=quoting(key), path="embeddings")
    await expect(502, upload_to("/api/upload-document", "failed.txt", session_id="vault"))

    search = {"query": QUESTION, "mode": "hybrid"}
    await expect(200, post("/api/collections/vault/search", search))
    await expect(200, post("/api/search", {**search, "session_id": "vault"}))

    rag = {"user_message": QUESTION, "session_id": "vault"}
    await expect(200, post("/api/chat", CHAT))
    await expect(200, post("/api/chat", {**CHAT, **rag}, sse=True))
    await expect(200, post("/api/rag-chat", rag))
    await expect(200, post("/api/rag-chat", rag, sse=True))
    # Each of them put the key to use: none was answered without the model.
    assert len(chat_requests(upstream)) == 4
    await expect(422, post("/api/chat", {"user_message": "no developer message"}))

    upstream.fail_next(401, message=quoting(key), path="chat")
    await expect(401, post("/api/chat", CHAT))
    upstream.fail_next(401, message=quoting(key), path="chat")
    await expect(401, post("/api/rag-chat", rag, sse=True))
    # New questions: a question asked before is embedded from the query cache.
    upstream.fail_next(401, message=quoting(key), path="embeddings")
    await expect(401, post("/api/rag-chat", {**rag, "user_message": f"{QUESTION} Why?"}))
    upstream.fail_next(401, message=quoting(key), path="embeddings")
    await expect(
        401, post("/api/collections/vault/search", {**search, "query": f"{QUESTION} How?"})
    )
    # A 400's message is shown to the caller, scrubbed.
    upstream.fail_next(400, message=quoting(key), path="chat")
    refused = await expect(400, post("/api/chat", CHAT))
    assert "Incorrect API key provided: [REDACTED]." in refused.json()["detail"]
    upstream.break_stream_after = 1
    await expect(200, post("/api/rag-chat", rag, sse=True))
    upstream.break_stream_after = None


def authorizations(upstream: FakeOpenAI, path: str) -> set[str]:
    return {request.authorization for request in upstream.requests if request.path == path}


async def test_a_request_key_is_never_stored_logged_or_echoed(
    settings: Settings, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    async with observed_app(settings) as seen:
        await send_series(seen.client, upstream, api_key=REQUEST_KEY)

    # The key really travelled: every upstream call was made with it.
    assert authorizations(upstream, "chat") == {f"Bearer {REQUEST_KEY}"}
    assert authorizations(upstream, "embeddings") == {f"Bearer {REQUEST_KEY}"}
    assert_logs_cover_the_series(seen.logs)
    await assert_never_shown_or_kept(REQUEST_KEY, seen, db)
    await assert_never_shown_or_kept(SERVER_KEY, seen, db)


async def test_the_server_key_is_never_stored_logged_or_echoed(
    settings: Settings, upstream: FakeOpenAI, db: AsyncConnection
) -> None:
    async with observed_app(settings) as seen:
        await send_series(seen.client, upstream, api_key=None)
        for path in ("/api/health", "/openapi.json", "/api/sessions", "/api/collections"):
            assert (await seen.client.get(path)).status_code == 200

    assert authorizations(upstream, "chat") == {f"Bearer {SERVER_KEY}"}
    assert authorizations(upstream, "embeddings") == {f"Bearer {SERVER_KEY}"}
    assert_logs_cover_the_series(seen.logs)
    await assert_never_shown_or_kept(SERVER_KEY, seen, db)


def assert_logs_cover_the_series(logs: CapturedLogs) -> None:
    """The capture saw what it should have, so an empty search means something."""
    assert {"openai._base_client", "uvicorn.access", "app.llm.errors"} <= logs.logger_names
    assert any("DEBUG openai._base_client" in line for line in logs.lines)
    # The upstream refusals that quoted the key were logged.
    assert any("AuthenticationError" in line for line in logs.lines)
    assert any("failed.txt) failed" in line for line in logs.lines)


async def test_a_key_in_a_request_url_never_reaches_the_access_log(settings: Settings) -> None:
    async with observed_app(settings) as seen:
        for query in (f"api_key={REQUEST_KEY}", f"token={REQUEST_KEY}", "x=sk-proj-abcdefghij"):
            assert (await seen.client.get(f"/api/health?{query}")).status_code == 200

    access = [line for line in seen.logs.lines if line.startswith("INFO uvicorn.access")]
    assert len(access) == 3
    assert any("/api/health?api_key=[REDACTED]" in line for line in access)
    assert not [line for line in seen.logs.lines if REQUEST_KEY in line or "sk-proj-abcd" in line]
