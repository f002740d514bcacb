"""A fake LLM upstream: a real HTTP server on 127.0.0.1 speaking three wire formats.

::

    with FakeUpstream(latency_ms=0) as fake:          # uvicorn in a background thread
        fake.fail_next("gpt-x", 2, status=503)         # then answers normally
        fake.script("claude-x", Fault.http(429, retry_after="1"), Fault.OK)
        fake.always("gemini-x", Fault.hang())          # every call, until reset()
        fake.chaos(p_503=0.3, p_429=0.1, seed=7)       # probabilistic, seeded
        ...
        fake.calls("gpt-x")                            # calls received for that model id
        fake.calls(path="/v1/messages")

Routes (base URLs: :attr:`openai_base`, :attr:`anthropic_base`, :attr:`gemini_base`):
``POST /v1/chat/completions`` (OpenAI), ``POST /v1/messages`` (Anthropic),
``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent`` (Gemini).
The answer is ``[{model id}] {last user text}``, so tests can see which model answered;
offered tools are called, tool results and images are acknowledged (see
:mod:`.fake_answer`). Every request body is recorded: :meth:`FakeUpstream.bodies`.

A fault applies to one call: first the scripted queue of that model, then its ``always``
fault, then chaos, else a normal answer.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import uvicorn

from intent_router.testing.fake_wire import AnthropicWire, GeminiWire, OpenAIWire, Wire

Receive = Any
Send = Any
FaultKind = Literal["ok", "http", "slow", "hang", "drop", "malformed", "missing", "break"]


@dataclass(frozen=True, slots=True)
class Fault:
    """What the fake does with one call."""

    kind: FaultKind
    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0

    OK: ClassVar[Fault]  # a normal answer, set below

    @classmethod
    def http(cls, status: int, retry_after: str | float | None = None) -> Fault:
        """An error answer in the provider's error shape (with Retry-After if given)."""
        ra = None if retry_after is None else str(retry_after)
        return cls("http", status=status, retry_after=ra)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds``."""
        return cls("slow", delay_s=seconds)

    @classmethod
    def hang(cls) -> Fault:
        """Never answer (until the client gives up or the server stops)."""
        return cls("hang")

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without any response."""
        return cls("drop")

    @classmethod
    def malformed(cls) -> Fault:
        """200 with a body (or stream event) that is not JSON."""
        return cls("malformed")

    @classmethod
    def missing_fields(cls) -> Fault:
        """200 with valid JSON lacking the provider's expected fields."""
        return cls("missing")

    @classmethod
    def break_stream(cls) -> Fault:
        """Streams: send the first text chunk, then drop the connection."""
        return cls("break")


Fault.OK = Fault("ok")


@dataclass(frozen=True, slots=True)
class Recorded:
    path: str
    model: str
    headers: dict[str, str]
    body: Any


@dataclass
class _Chaos:
    p_503: float
    p_429: float
    retry_after: str | None
    models: frozenset[str] | None
    rng: random.Random


@dataclass
class _State:
    scripts: dict[str, list[Fault]] = field(default_factory=dict)
    always: dict[str, Fault] = field(default_factory=dict)
    chaos: _Chaos | None = None
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    requests: list[Recorded] = field(default_factory=list)


class _Drop(Exception):
    pass


class FakeUpstream:
    """Scriptable fake of the OpenAI, Anthropic and Gemini APIs on a loopback port."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0,
        chunk_delay_ms: float = 0.0, record_requests: bool = True,
    ) -> None:  # fmt: skip
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.chunk_delay_ms = chunk_delay_ms
        self.record_requests = record_requests
        self._lock = threading.Lock()
        self._state = _State()
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base(self) -> str:
        return self.url

    @property
    def gemini_base(self) -> str:
        return self.url

    def base_url(self, provider: str) -> str:
        return self.openai_base if provider == "openai" else self.url

    def start(self) -> FakeUpstream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self, lifespan="off", log_config=None, access_log=False, http="h11",
            loop="asyncio", timeout_graceful_shutdown=1,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-upstream"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake upstream failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting --------------------------------------------------------------------

    def script(self, model: str, *faults: Fault) -> None:
        """Queue faults for the next calls to ``model`` (then normal answers)."""
        with self._lock:
            self._state.scripts.setdefault(model, []).extend(faults)

    def fail_next(
        self, model: str, n: int, status: int = 503, retry_after: str | float | None = None
    ) -> None:
        self.script(model, *[Fault.http(status, retry_after)] * n)

    def always(self, model: str, fault: Fault | None) -> None:
        """Apply ``fault`` to every call of ``model`` (None clears it)."""
        with self._lock:
            if fault is None:
                self._state.always.pop(model, None)
            else:
                self._state.always[model] = fault

    def chaos(
        self, *, p_503: float = 0.0, p_429: float = 0.0, seed: int = 0,
        retry_after: str | float | None = None, models: list[str] | None = None,
    ) -> None:  # fmt: skip
        """Random 503s and 429s with a seeded generator (for load benches)."""
        with self._lock:
            self._state.chaos = _Chaos(
                p_503, p_429, None if retry_after is None else str(retry_after),
                None if models is None else frozenset(models), random.Random(seed),
            )  # fmt: skip

    def reset(self) -> None:
        """Forget scripts, faults, chaos, counts and recorded requests."""
        with self._lock:
            self._state = _State()

    def calls(self, model: str | None = None, path: str | None = None) -> int:
        """Calls received, optionally only for one upstream model id and/or URL path."""
        with self._lock:
            return sum(
                n
                for (m, p), n in self._state.counts.items()
                if (model is None or m == model) and (path is None or p == path)
            )

    def bodies(self, model: str | None = None) -> list[Any]:
        """The JSON bodies received (for one upstream model id), oldest first."""
        return [r.body for r in self.requests(model)]

    def requests(self, model: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self._state.requests if model is None or r.model == model]

    def _next_fault(self, model: str) -> Fault:
        with self._lock:
            queue = self._state.scripts.get(model)
            if queue:
                return queue.pop(0)
            if model in self._state.always:
                return self._state.always[model]
            chaos = self._state.chaos
            if chaos is not None and (chaos.models is None or model in chaos.models):
                roll = chaos.rng.random()
                if roll < chaos.p_503:
                    return Fault.http(503, chaos.retry_after)
                if roll < chaos.p_503 + chaos.p_429:
                    return Fault.http(429, chaos.retry_after)
            return Fault.OK

    # -- the ASGI app -----------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> Any:
        if scope["type"] != "http":
            return None
        path: str = scope["path"]
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        wire, model, is_stream = _route(path)
        if wire is None or scope["method"] != "POST":
            await _send_json(send, 404, {"error": {"message": f"no route {path}"}})
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            await _send_json(send, 400, wire.error(400, "body is not JSON"))
            return None
        model = model or str(body.get("model", ""))
        is_stream = is_stream or bool(body.get("stream"))
        with self._lock:
            self._state.counts[(model, path)] += 1
            if self.record_requests:
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                self._state.requests.append(Recorded(path, model, headers, body))
        fault = self._next_fault(model)
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        try:
            return await self._answer(wire, body, fault, is_stream, receive, send)
        except _Drop:
            # uvicorn closes the transport without a response when an app returns a value
            return "drop"

    async def _answer(
        self, wire: Wire, body: Any, fault: Fault, is_stream: bool, receive: Receive, send: Send
    ) -> None:
        if fault.kind == "drop" or (fault.kind == "break" and not is_stream):
            raise _Drop
        if fault.kind == "hang":
            await self._hang(receive)
            raise _Drop
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
        if fault.kind == "http":
            extra = [(b"retry-after", fault.retry_after.encode())] if fault.retry_after else []
            await _send_json(send, fault.status, wire.error(fault.status, "scripted fault"), extra)
            return
        try:
            answer = wire.parse(body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            await _send_json(send, 400, wire.error(400, f"invalid request: {exc}"))
            return
        if not is_stream:
            if fault.kind == "malformed":
                await _send_raw(send, 200, b'{"id": "broken', b"application/json", [])
            elif fault.kind == "missing":
                await _send_json(send, 200, {"id": "x", "object": "unexpected"})
            else:
                await _send_json(send, 200, wire.body(answer))
            return
        events = wire.stream(answer, body)
        if fault.kind == "malformed":
            events = [b"data: {not json\n\n"]
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, event in enumerate(events):
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if fault.kind == "break" and i == wire.FIRST_TEXT:
                raise _Drop
            if self.chunk_delay_ms:
                await asyncio.sleep(self.chunk_delay_ms / 1000)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _hang(self, receive: Receive) -> None:
        """Wait until the client disconnects or the server stops (60 s at most)."""
        deadline = time.monotonic() + 60
        while not self._stopping.is_set() and time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(receive(), 0.05)
            except TimeoutError:
                continue
            if message["type"] == "http.disconnect":
                return


def _route(path: str) -> tuple[Wire | None, str, bool]:
    if path == "/v1/chat/completions":
        return OpenAIWire(), "", False
    if path == "/v1/messages":
        return AnthropicWire(), "", False
    if path.startswith("/v1beta/models/") and ":" in path:
        model, _, method = path.removeprefix("/v1beta/models/").partition(":")
        if method in ("generateContent", "streamGenerateContent"):
            return GeminiWire(model), model, method == "streamGenerateContent"
    return None, "", False


async def _send_raw(
    send: Send, status: int, body: bytes, ctype: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send, status: int, data: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send_raw(send, status, json.dumps(data).encode(), b"application/json", extra or [])
