"""An OpenAI-compatible HTTP server for tests and benchmarks.

It speaks the wire format the openai SDK expects: streamed chat completion
chunks over server-sent events ending in `[DONE]`, embeddings as floats or
base64, and error bodies `{"error": {...}}` with their status codes. Tests
script failures and delays, and read back every request it received.

Embeddings are deterministic bags of hashed words, so texts that share words
are close: good enough to test retrieval without a model. Those vectors are
sparse (a 100-word text sets about 100 of 1,536 dimensions), and HNSW graphs
behave differently on sparse vectors than on a model's dense ones, so
benchmarks ask for `dense_vectors` (`--dense`): each word is the sum of three
fixed random Gaussian rows, a text the normalised sum of its distinct words. They are
dense in every dimension and still text-dependent: texts that share words are
close.

With `fail_randomly` (or `--failure-rate` on the command line) a share of
calls fails the ways real providers and proxies fail: 429 with Retry-After,
500, 503, a hang past the client's timeout, a connection closed without an
answer, a 200 whose JSON is cut off, and (embeddings) a 200 with one vector
missing. The draws come from a seeded RNG, and `faults` counts what was done.
"""

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tests.support.servers import ThreadedServer


@dataclass
class RecordedRequest:
    path: str
    body: dict[str, Any]
    authorization: str


@dataclass
class Failure:
    status: int
    message: str
    retry_after: str | None = None
    path: str | None = None


FAULT_KINDS = (
    "rate_limited",
    "server_error",
    "unavailable",
    "timeout",
    "dropped_connection",
    "malformed_json",
    "wrong_count",
    "no_data",
)
# A chat answer has no count to get wrong, nor a list of embeddings to lack.
_FAULTS_BY_PATH = {
    "embeddings": FAULT_KINDS,
    "chat": tuple(kind for kind in FAULT_KINDS if kind not in ("wrong_count", "no_data")),
}
_DROP = "fake_openai.drop_connection"


@dataclass
class Gate:
    """Holds the requests whose input contains `marker` until released, then lets them
    through or fails them: the window a race test opens at a chosen point."""

    marker: str
    fail_status: int | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def until_arrived(self, seconds: float = 30) -> None:
        """Wait (without blocking the caller's event loop) for a held request."""
        arrived = await asyncio.to_thread(self.arrived.wait, seconds)
        assert arrived, f"no request with {self.marker!r} arrived"

    def release(self) -> None:
        self.released.set()


@dataclass
class FakeOpenAI:
    DEFAULT_CHAT_TOKENS: ClassVar[list[str]] = ["Hello", ",", " world", "!"]
    chat_tokens: list[str] = field(default_factory=lambda: FakeOpenAI.DEFAULT_CHAT_TOKENS.copy())
    token_delay: float = 0.0
    response_delay: float = 0.0
    embedding_dimensions: int = 384
    # Dense vectors (sums of fixed random word vectors) instead of hashed words' slots.
    dense_vectors: bool = False
    # How vectors are sent: "as_asked" (`encoding_format`), "float" (a server that ignores
    # the field), or "cut_base64" (base64 missing each vector's last two bytes).
    embedding_encoding: Literal["as_asked", "float", "cut_base64"] = "as_asked"
    # When set, a stream pauses after its first token until the event is set.
    hold_stream_after_first_token: threading.Event | None = None
    # When set, every request waits for the event before it is answered.
    hold_requests: threading.Event | None = None
    valid_keys: set[str] | None = None
    # When set, the connection drops after this many tokens, mid-stream.
    break_stream_after: int | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    # How many embedding requests were in flight as each one arrived.
    in_flight_on_arrival: list[int] = field(default_factory=list)
    stream_finished: threading.Event = field(default_factory=threading.Event)
    # The share of calls that fail at random (see fail_randomly).
    failure_rate: float = 0.0
    failure_kinds: tuple[str, ...] = FAULT_KINDS
    failure_paths: tuple[str, ...] = ("embeddings", "chat")
    # Calls whose input contains the marker fail at this rate instead (see make_flaky).
    flaky_marker: str | None = None
    flaky_rate: float = 0.0
    # How long a "timeout" fault holds its request (it ends early when the client gives up).
    hang_seconds: float = 60.0
    # Faults done, per path ("embeddings", "chat") and kind.
    faults: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    _random: random.Random = field(default_factory=lambda: random.Random(0))
    _fault_deck: list[str] = field(default_factory=list)
    _failures: deque[Failure] = field(default_factory=deque)
    _gates: list[Gate] = field(default_factory=list)
    _server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"{self._server.url}/v1"

    def fail_next(
        self,
        status: int,
        times: int = 1,
        message: str = "",
        retry_after: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next `times` requests (to `path`, "chat" or "embeddings", if given) answer
        `status` instead of succeeding."""
        for _ in range(times):
            failure = Failure(status, message or f"scripted {status}", retry_after, path)
            self._failures.append(failure)

    def gate(self, marker: str, fail_status: int | None = None) -> Gate:
        """From now on, hold every request whose input contains `marker` (see Gate)."""
        gate = Gate(marker, fail_status)
        self._gates.append(gate)
        return gate

    def fail_randomly(
        self,
        rate: float,
        kinds: Sequence[str] = FAULT_KINDS,
        paths: Sequence[str] = ("embeddings", "chat"),
        seed: int = 0,
    ) -> None:
        """From now on, each call to `paths` fails with probability `rate`.

        The kind of each fault is dealt from a shuffled deck of `kinds`, so every
        kind shows up once per len(kinds) faults, in a seeded random order.
        """
        unknown = set(kinds) - set(FAULT_KINDS)
        assert not unknown, f"unknown fault kinds {unknown}; known: {FAULT_KINDS}"
        self.failure_rate = rate
        self.failure_kinds = tuple(kinds)
        self.failure_paths = tuple(paths)
        self._random.seed(seed)
        self._fault_deck.clear()

    def make_flaky(self, marker: str, rate: float) -> None:
        """From now on, calls whose input contains `marker` fail with probability `rate`,
        at once with a 500 (so such uploads fail quickly), whatever the rate of others."""
        self.flaky_marker, self.flaky_rate = marker, rate

    def reset(self) -> None:
        """Forget requests and scripts: each test starts from a healthy server."""
        self.requests.clear()
        self.chat_tokens = FakeOpenAI.DEFAULT_CHAT_TOKENS.copy()
        self._failures.clear()
        for gate in self._gates:
            gate.release()
        self._gates.clear()
        self.fail_randomly(0.0)
        self.flaky_marker, self.flaky_rate = None, 0.0
        self.faults.clear()
        self.stream_finished.clear()
        self.valid_keys = None
        self.hold_stream_after_first_token = None
        self.hold_requests = None
        self.break_stream_after = None
        self.response_delay = 0.0
        self.token_delay = 0.0
        self.embedding_encoding = "as_asked"
        self.max_in_flight = 0
        self.in_flight_on_arrival.clear()

    def start(self) -> "FakeOpenAI":
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/_stats", self._stats, methods=["GET"]),
            ]
        )
        # Scripted connection drops raise inside the app; their tracebacks are noise.
        self._server = ThreadedServer(_ConnectionDropper(app), log_level="critical").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    async def _admit(self, request: Request, path: str) -> tuple[dict[str, Any], Response | None]:
        body = await request.json()
        authorization = request.headers.get("authorization", "")
        self.requests.append(RecordedRequest(path, body, authorization))
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        if self.hold_requests is not None:
            await asyncio.to_thread(self.hold_requests.wait, 60)
        for gate in self._gates_for(body):
            gate.arrived.set()
            await asyncio.to_thread(gate.released.wait, 60)
            if gate.fail_status is not None:
                return body, _error(gate.fail_status, f"gate {gate.marker}: failed")
        key = authorization.removeprefix("Bearer ").strip()
        if self.valid_keys is not None and key not in self.valid_keys:
            # Like the real API, the message quotes part of the key.
            return body, _error(401, f"Incorrect API key provided: {key[:6]}***{key[-4:]}.")
        failure = next((f for f in self._failures if f.path in (None, path)), None)
        if failure is not None:
            self._failures.remove(failure)
            headers = {"retry-after": failure.retry_after} if failure.retry_after else None
            return body, _error(failure.status, failure.message, headers)
        return body, await self._random_fault(request, path, body)

    def _gates_for(self, body: dict[str, Any]) -> list[Gate]:
        text = _input_text(body)
        return [gate for gate in self._gates if gate.marker in text]

    def _draw_fault(self, path: str, body: dict[str, Any]) -> str | None:
        kinds = [k for k in self.failure_kinds if k in _FAULTS_BY_PATH[path]]
        if path not in self.failure_paths or not kinds:
            return None
        if self.flaky_marker is not None and self.flaky_marker in _input_text(body):
            if self._random.random() >= self.flaky_rate:
                return None
            self.faults[path]["flaky"] += 1
            return "server_error"
        if self._random.random() >= self.failure_rate:
            return None
        if not self._fault_deck:
            self._fault_deck = self._random.sample(kinds, len(kinds))
        kind = self._fault_deck.pop()
        self.faults[path][kind] += 1
        return kind

    async def _random_fault(
        self, request: Request, path: str, body: dict[str, Any]
    ) -> Response | None:
        """The answer of a randomly failing call, or None to answer normally."""
        kind = self._draw_fault(path, body)
        if kind == "rate_limited":
            return _error(429, "random fault: rate limited", {"retry-after": "1"})
        if kind == "server_error":
            return _error(500, "random fault: server error")
        if kind == "unavailable":
            return _error(503, "random fault: unavailable")
        if kind == "timeout":
            await _hang_until_disconnected(request, self.hang_seconds)
            return _error(504, "random fault: answered after the client gave up")
        if kind == "dropped_connection":
            request.scope[_DROP] = True
            return Response()
        if kind == "malformed_json":
            if body.get("stream"):
                return StreamingResponse(
                    iter(['data: {"id": "chatcmpl-fake", "choices": [{"delta": {"con\n\n']),
                    media_type="text/event-stream",
                )
            return Response(
                '{"object": "list", "data": [{"object": "embed', 200, media_type="application/json"
            )
        if kind == "wrong_count":
            return self._embedding_response(body, drop_last=True)
        if kind == "no_data":  # valid JSON, but not an embeddings answer (a proxy's page)
            return JSONResponse({"status": "ok"})
        return None

    async def _stats(self, _request: Request) -> Response:
        """Request and fault counts, for benchmarks that run this server in another process."""
        counts: dict[str, int] = {}
        for recorded in self.requests:
            counts[recorded.path] = counts.get(recorded.path, 0) + 1
        return JSONResponse(
            {
                "requests": counts,
                "max_in_flight": self.max_in_flight,
                "faults": {path: dict(kinds) for path, kinds in self.faults.items()},
            }
        )

    async def _chat(self, request: Request) -> Response:
        body, refusal = await self._admit(request, "chat")
        if refusal is not None:
            return refusal
        if not body.get("stream"):
            return JSONResponse(_completion(body["model"], "".join(self.chat_tokens)))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            self._chat_events(body["model"], include_usage), media_type="text/event-stream"
        )

    async def _chat_events(self, model: str, include_usage: bool) -> AsyncIterator[str]:
        self.stream_finished.clear()
        for position, token in enumerate(self.chat_tokens):
            if position == self.break_stream_after:
                raise ConnectionAbortedError("scripted: upstream dropped the stream")
            delta: dict[str, str] = {"content": token}
            if position == 0:
                delta["role"] = "assistant"
            yield _sse(_chunk(model, delta, None))
            if position == 0 and self.hold_stream_after_first_token is not None:
                await asyncio.to_thread(self.hold_stream_after_first_token.wait, 30)
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
        yield _sse(_chunk(model, {}, "stop"))
        if include_usage:
            usage = {"prompt_tokens": 10, "completion_tokens": len(self.chat_tokens)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            yield _sse({**_chunk(model, {}, None), "choices": [], "usage": usage})
        yield "data: [DONE]\n\n"
        self.stream_finished.set()

    async def _embeddings(self, request: Request) -> Response:
        self.in_flight += 1
        self.in_flight_on_arrival.append(self.in_flight)
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._embed(request)
        finally:
            self.in_flight -= 1

    async def _embed(self, request: Request) -> Response:
        # The answer is computed in a thread while the response delay runs, so a call
        # takes `response_delay` as from a remote provider, not the delay plus this
        # server's numpy and JSON (0.45 s for 2,048 dense vectors of 1,536 dimensions).
        prepared = asyncio.ensure_future(
            asyncio.to_thread(self._embedding_response, await request.json())
        )
        # A refused call never reads it; this keeps its error, if any, out of the logs.
        prepared.add_done_callback(lambda done: done.cancelled() or done.exception())
        _, refusal = await self._admit(request, "embeddings")
        if refusal is not None:
            return refusal
        return await prepared

    def _embedding_response(self, body: dict[str, Any], drop_last: bool = False) -> Response:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if len(inputs) > 2048:
            return _error(400, "'input' must have at most 2048 items")
        dimensions = int(body.get("dimensions") or self.embedding_dimensions)
        as_base64 = self.embedding_encoding == "cut_base64" or (
            self.embedding_encoding == "as_asked" and body.get("encoding_format") == "base64"
        )
        cut = 2 if self.embedding_encoding == "cut_base64" else 0
        texts = [str(text) for text in inputs]
        vectors = (
            dense_embed_texts(texts, dimensions)
            if self.dense_vectors
            else np.asarray([embed_text(text, dimensions) for text in texts], np.float32)
        )
        data = []
        for index, vector in enumerate(vectors):
            encoded: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()[: len(vector) * 4 - cut]).decode()
                if as_base64
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        if drop_last:
            data.pop()
        tokens = sum(len(str(text).split()) for text in inputs)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


class _ConnectionDropper:
    """Closes the connection instead of answering when a handler asked for it.

    ASGI has no way to drop a connection before the response starts (uvicorn
    answers 500 if the app raises), so this reaches uvicorn's transport through
    its `send` callable, which is a method of the request cycle that owns it.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_or_drop(message: Message) -> None:
            if scope.get(_DROP):
                if message["type"] == "http.response.start":
                    transport = send.__self__.transport  # type: ignore[attr-defined]
                    transport.close()
                    # Return once uvicorn knows, or it answers "no response" with a 500.
                    while (await receive())["type"] != "http.disconnect":
                        pass
                return
            await send(message)

        await self.app(scope, receive, send_or_drop)


async def _hang_until_disconnected(request: Request, seconds: float) -> None:
    # With the body read, the next message uvicorn delivers is the disconnect.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass


def embedding_calls(upstream: FakeOpenAI) -> int:
    """How many embedding requests the fake server has answered since its reset."""
    return sum(1 for request in upstream.requests if request.path == "embeddings")


def embed_text(text: str, dimensions: int) -> list[float]:
    """A unit vector from hashed lower-case words."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        slot, sign = _word_slot(word, dimensions)
        vector[slot] += sign
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0:
        vector[0] = norm = 1.0
    return [value / norm for value in vector]


# Rows of the dense vectors' random basis: a word is the sum of three of them.
DENSE_BASIS_ROWS = 1024


def dense_embed_texts(texts: Sequence[str], dimensions: int) -> npt.NDArray[np.float32]:
    """Dense unit vectors, one row per text: the sum of its words, each three fixed
    random Gaussian rows with signs (one matrix product for the whole batch)."""
    text_of: list[int] = []
    rows: list[int] = []
    signs: list[float] = []
    for index, text in enumerate(texts):
        # Each distinct word once: repeated function words would otherwise pull every
        # text toward the same direction (mean cosine 0.65 between unrelated paragraphs).
        for word in set(re.findall(r"\w+", text.lower())):
            word_rows, word_signs = _word_rows(word)
            text_of += (index, index, index)
            rows += word_rows
            signs += word_signs
    counts = np.zeros((len(texts), DENSE_BASIS_ROWS), np.float32)
    np.add.at(counts, (text_of, rows), signs)
    vectors: npt.NDArray[np.float32] = counts @ _dense_basis(dimensions)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    empty = norms[:, 0] == 0
    vectors[empty, 0] = norms[empty, 0] = 1.0
    return vectors / norms


@functools.cache
def _dense_basis(dimensions: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(0).standard_normal((DENSE_BASIS_ROWS, dimensions), np.float32)


@functools.lru_cache(maxsize=200_000)
def _word_rows(word: str) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    digest = hashlib.blake2b(word.encode(), digest_size=16).digest()
    rows = [
        int.from_bytes(digest[4 * i : 4 * i + 4], "little") % DENSE_BASIS_ROWS for i in range(3)
    ]
    signs = [1.0 if digest[12 + i] & 1 else -1.0 for i in range(3)]
    return (rows[0], rows[1], rows[2]), (signs[0], signs[1], signs[2])


@functools.lru_cache(maxsize=200_000)
def _word_slot(word: str, dimensions: int) -> tuple[int, float]:
    # Cached: words repeat, and benchmarks should time ragstore, not this server.
    digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little") % dimensions, 1.0 if digest[4] & 1 else -1.0


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _chunk(model: str, delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
    }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": None}},
        status_code=status,
        headers=headers,
    )


def _input_text(body: dict[str, Any]) -> str:
    """The texts of an embeddings request, as one string (markers are looked for in it)."""
    inputs = body.get("input")
    texts = inputs if isinstance(inputs, list) else [inputs]
    return " ".join(str(item) for item in texts if item is not None)


def main() -> None:
    """Serve the fake on 127.0.0.1 in its own process (benchmarks), until killed."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request")
    parser.add_argument(
        "--failure-rate", type=float, default=0.0, help="share of calls that fail (0 to 1)"
    )
    parser.add_argument(
        "--failure-kinds",
        default=",".join(FAULT_KINDS),
        help=f"comma-separated kinds of failure, of {', '.join(FAULT_KINDS)}",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the failure draws")
    parser.add_argument("--flaky-marker", help="inputs containing this fail at --flaky-rate")
    parser.add_argument("--flaky-rate", type=float, default=0.0)
    parser.add_argument(
        "--hang-seconds", type=float, default=60.0, help="how long a timeout fault hangs"
    )
    parser.add_argument(
        "--dense", action="store_true", help="dense vectors (sums of random word vectors)"
    )
    arguments = parser.parse_args()
    server = FakeOpenAI(
        response_delay=arguments.latency,
        hang_seconds=arguments.hang_seconds,
        dense_vectors=arguments.dense,
    )
    server.fail_randomly(
        arguments.failure_rate, arguments.failure_kinds.split(","), seed=arguments.seed
    )
    if arguments.flaky_marker:
        server.make_flaky(arguments.flaky_marker, arguments.flaky_rate)
    server.start()
    print(server.url, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()


if __name__ == "__main__":
    main()
