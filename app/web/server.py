"""How ragstore is served: uvicorn, with a deadline on reading each request's headers.

uvicorn times out idle keep-alive connections, but not a client that opens a
connection and sends its request line and headers a byte at a time (a
slow-loris): each such connection is held open for as long as the client
likes. The protocol below gives every request `request_header_timeout_seconds`
from its first byte (or from the connection being opened) to its last header.
Past it, a client that sent part of a request is answered 408 and the
connection is closed; one that sent nothing is closed. The body has its own
timeout (RequestBodyTimeout in `app.core.middleware`).
"""

import asyncio
import json
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from app.core.config import Settings, get_settings

logger = logging.getLogger(__name__)


class HeaderDeadline:
    """Mixin for uvicorn's HTTP protocols (h11 and httptools): both create `self.cycle`
    when a request's headers are complete, inside `data_received`."""

    header_timeout: float
    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._deadline: asyncio.TimerHandle | None = None
        self._request_started = False
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self._between_requests():
            self._arm()
        self._request_started = True
        super().data_received(data)  # type: ignore[misc]
        if self._deadline is not None and self.cycle is not self._cycle_when_armed:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _between_requests(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _arm(self) -> None:
        self._cycle_when_armed = self.cycle
        self._request_started = False
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.cycle is not self._cycle_when_armed:
            return
        if self._request_started:
            logger.info("request headers incomplete after %g s: answered 408", self.header_timeout)
            detail = f"the request headers did not arrive within {self.header_timeout:g} s"
            body = json.dumps({"detail": detail}).encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()


def http_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's default HTTP protocol with the header deadline."""
    return type(
        "HeaderDeadlineProtocol",
        (HeaderDeadline, AutoHTTPProtocol),
        {"header_timeout": header_timeout},
    )


class EnvironmentHeaderDeadlineProtocol(HeaderDeadline, AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """The same, named by an import path, for worker processes (`ragstore serve --workers`):
    a class made at run time cannot be sent to them. Its deadline comes from the
    environment's settings, which those processes read."""

    @property
    def header_timeout(self) -> float:  # type: ignore[override]
        return get_settings().request_header_timeout_seconds


def server_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration ragstore is served with (the CLI's and the tests');
    `options` are uvicorn.Config's, and win over the settings'."""
    return uvicorn.Config(app, **server_options(settings, **options))


def server_options(settings: Settings, **options: Any) -> dict[str, Any]:
    """uvicorn's options for ragstore (for uvicorn.run, which runs several processes)."""
    several = options.get("workers", 1) > 1
    defaults = {
        "http": "app.web.server:EnvironmentHeaderDeadlineProtocol"
        if several
        else http_protocol(settings.request_header_timeout_seconds),
        "log_level": settings.log_level.lower(),
    }
    return {**defaults, **options}
