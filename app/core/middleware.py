"""The ASGI middleware every request passes: service authentication, security headers
and the upload size limit.

They are plain ASGI middleware rather than route dependencies, so nothing a
route forgets can open a hole, and streamed responses (chat, SSE) are covered
the same way as JSON ones.
"""

import asyncio
import hmac
import json

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import error_content

# Load balancers and orchestrators probe health without credentials.
OPEN_PATHS = frozenset({"/api/health"})
# The console's page and the API docs, with their files, load without a key: they hold
# no stored data, and each asks for the key before it calls the API (the console's
# prompt, Swagger UI's Authorize). The schema they render describes the routes of this
# open-source package, no data; every operation it lists still needs the key.
CONSOLE_PATH = "/"
CONSOLE_FILES_PATH = "/console"
DOCS_FILES_PATH = "/static-offline-docs"
# The /docs and /redoc pages run inline scripts (their files are served locally).
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
PUBLIC_PAGES = DOCS_PATHS | {CONSOLE_PATH, "/openapi.json"}
PUBLIC_FILE_PREFIXES = (f"{CONSOLE_FILES_PATH}/", f"{DOCS_FILES_PATH}/")
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
# The console loads only its own files and calls only this server: no inline script or
# style, nothing from elsewhere, no frames.
CONSOLE_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Multipart framing and the form's other fields come on top of the file.
_MULTIPART_ALLOWANCE = 1024 * 1024


class ServiceAuth:
    """With `RAGSTORE_API_KEYS` set, every route but health, the console and the docs pages
    (with their files) needs `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, api_keys: list[str]) -> None:
        self.app = app
        self.api_keys = [key.encode() for key in api_keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]) or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            error_content(scope["path"], 401, MISSING_OR_INVALID_KEY),
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


def is_public(path: str) -> bool:
    """Whether a path is answered without a service key."""
    return path in OPEN_PATHS or path in PUBLIC_PAGES or path.startswith(PUBLIC_FILE_PREFIXES)


def _content_security_policy(path: str) -> str | None:
    if path in DOCS_PATHS:
        return None
    if path == CONSOLE_PATH or path.startswith(f"{CONSOLE_FILES_PATH}/"):
        return CONSOLE_CONTENT_SECURITY_POLICY
    return API_CONTENT_SECURITY_POLICY


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = _content_security_policy(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if policy is not None:
                    headers.setdefault("content-security-policy", policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestBodyTimeout:
    """Gives up on a request whose body stops arriving: a client that sends its headers
    and then trickles (or never sends) the body is answered 408 after `seconds` without
    a byte, instead of holding a worker slot, a temporary file and memory forever."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                # After the body, `receive` only waits for a disconnect, as long as a
                # streamed answer (chat, progress events) lasts: never timed.
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                # Raised inside body parsing; FastAPI passes HTTPExceptions through.
                raise HTTPException(
                    status_code=408,
                    detail=f"the request body stalled: nothing arrived for {self.seconds:g} s",
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        await self.app(scope, timed_receive, send)


def upload_too_large(max_bytes: int) -> str:
    """The message of a refused upload, wherever it is refused."""
    return f"the file is larger than the {max_bytes / 1024 / 1024:.3g} MB upload limit"


class UploadSizeLimit:
    """Refuses request bodies over the upload limit while they stream in.

    A declared Content-Length over the limit is refused before a byte is read;
    a chunked body is cut off as soon as it passes the limit, so an oversized
    upload never fills the disk.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_bytes + _MULTIPART_ALLOWANCE
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_too_large(send, scope["path"], upload_too_large(self.max_bytes))
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised inside body parsing; FastAPI passes HTTPExceptions through.
                    raise HTTPException(status_code=413, detail=upload_too_large(self.max_bytes))
            return message

        await self.app(scope, limited_receive, send)


async def _send_too_large(send: Send, path: str, detail: str) -> None:
    body = json.dumps(error_content(path, 413, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
