"""Admission at the edge: refuse what cannot be served, fast, before any work is done.

A pure ASGI middleware (not ``BaseHTTPMiddleware``, which breaks streaming) in front of
every route except ``/healthz``, ``/readyz`` and ``/metrics``:

* **Body limit.** A ``Content-Length`` above ``max_body_bytes`` is answered 413 before a
  byte of the body is read; a chunked body is counted while it streams in and cut with
  a 413 as soon as it passes the limit. The rest of an oversized body is read and thrown
  away first (never kept; at most one second, less if the client pauses), because the
  server stops reading once the answer is sent and a client still uploading would see
  a reset connection instead of the 413.
* **Load shedding.** At most ``max_in_flight`` requests run at once (0: no cap). A
  request beyond it waits in a short queue (``max_queue`` places, default as many as
  the cap, so a queued request waits about one request's time; never more than
  ``queue_timeout_s``), served by priority (header ``x-intent-router-priority``:
  ``high``, ``normal`` (default) or ``low``; with API keys on, a key's own ``priority``
  wins over the header), then arrival. When the queue is full a more
  urgent arrival takes the place of the least urgent waiter. Whoever does not get a slot
  is answered 503 with ``Retry-After`` at once. An admitted stream holds its slot until
  it ends.
* **Readiness.** ``GET /readyz`` answers 200 normally and 503 when every slot is taken,
  with the in-flight and queue figures; ``/healthz`` stays a cheap liveness check.

Errors have the shape of every other error answer (``api/errors.py``): OpenAI's
``{"error": {"message", "type", "param", "code"}}``, Anthropic's on ``/v1/messages``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from intent_router.api.errors import ApiError
from intent_router.config import Settings
from intent_router.observability.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PRIORITY_HEADER = "x-intent-router-priority"
PRIORITIES = {"high": 0, "normal": 1, "low": 2}
KEY_PRIORITIES = ("low", "normal", "high")  # a key's priority (0-2, higher first) by name
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
DRAIN_S = 1.0  # how long the rest of an oversized body is read and dropped, at most
DRAIN_IDLE_S = 0.2  # ... stopping earlier when the client pauses this long


def _error(
    path: str, status: int, message: str, type_: str, code: str, param: str | None = None
) -> bytes:
    """The error body every endpoint gives (OpenAI's shape; Anthropic's on its ingress)."""
    api = ApiError(status, message, type=type_, param=param, code=code)
    return bytes(api.response(path).body)


@dataclass
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[bool]


class AdmissionControl:
    """The in-flight slots, the priority queue and the counters behind the middleware."""

    def __init__(
        self,
        *,
        max_in_flight: int = 0,
        max_queue: int | None = None,
        queue_timeout_s: float = 1.0,
        max_body_bytes: int = 4 * 1024 * 1024,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics if metrics is not None else Metrics()
        self.metrics.on_scrape(self._refresh_gauges)
        self.max_in_flight = max_in_flight
        self.max_queue = max_in_flight if max_queue is None else max_queue
        self.queue_timeout_s = queue_timeout_s
        self.max_body_bytes = max_body_bytes
        self.in_flight = 0
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self.admitted = 0

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def saturated(self) -> bool:
        return 0 < self.max_in_flight <= self.in_flight

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.queue_timeout_s))

    async def acquire(self, priority: int) -> bool:
        """A slot now, after a short wait in the queue, or False (shed)."""
        if self.max_in_flight <= 0 or (self.in_flight < self.max_in_flight and not self.queued):
            self.in_flight += 1
            self.admitted += 1
            return True
        if self.queued >= self.max_queue:
            worst = max(self._waiters, key=lambda w: (w.priority, w.seq), default=None)
            if worst is None or worst.priority <= priority:
                self.metrics.shed.labels("queue_full").inc()
                return False
            self._waiters.remove(worst)  # a more urgent request takes its place
            self.metrics.shed.labels("queue_full").inc()
            worst.future.set_result(False)
        waiter = _Waiter(priority, next(self._seq), asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                granted = await waiter.future
        except TimeoutError:
            if _handed(waiter):
                granted = True  # handed a slot just as the wait ran out: keep it
            else:
                self.metrics.shed.labels("queue_timeout").inc()
                return False
        except asyncio.CancelledError:  # the client went away while queued
            if _handed(waiter):
                self.release()  # pass on the slot it was just handed
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if granted:
            self.admitted += 1
        return granted

    def release(self) -> None:
        """Free a slot: handed to the most urgent waiter, if any."""
        while self._waiters:
            best = min(self._waiters, key=lambda w: (w.priority, w.seq))
            self._waiters.remove(best)
            if not best.future.done():
                best.future.set_result(True)  # the slot changes hands; in_flight unchanged
                return
        self.in_flight -= 1

    def readiness(self) -> dict[str, Any]:
        return {
            "status": "saturated" if self.saturated else "ready",
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "queued": self.queued,
            "max_queue": self.max_queue,
        }

    def _refresh_gauges(self, metrics: Metrics) -> None:
        metrics.in_flight.set(self.in_flight)
        metrics.queued.set(self.queued)


def _key_priority(scope: Scope) -> str | None:
    """The caller's key priority (``api/access.py`` put the caller in the state), if any."""
    access = scope.get("state", {}).get("access")
    priority = access.principal.priority if access is not None else None
    if priority is None:
        return None
    return KEY_PRIORITIES[max(0, min(2, priority))]


class _BodyTooLarge(Exception):
    pass


def _handed(waiter: _Waiter) -> bool:
    future = waiter.future
    return future.done() and not future.cancelled() and future.result()


class AdmissionMiddleware:
    """The pure ASGI middleware applying an :class:`AdmissionControl`."""

    def __init__(self, app: ASGIApp, control: AdmissionControl) -> None:
        self.app = app
        self.control = control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/readyz":
            ready = self.control.readiness()
            await _respond(send, 200 if ready["status"] == "ready" else 503, json.dumps(ready))
            return
        if path in EXEMPT:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.control.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await self._too_large(path, send, receive)
            return
        raw_priority = headers.get(PRIORITY_HEADER, "normal").strip().lower()
        keyed = _key_priority(scope)
        if keyed is not None:
            raw_priority = keyed
        if raw_priority not in PRIORITIES:
            allowed = ", ".join(PRIORITIES)
            body = _error(
                path, 400, f"header {PRIORITY_HEADER}: '{raw_priority}' is not one of {allowed}",
                "invalid_request_error", "invalid_priority", PRIORITY_HEADER,
            )  # fmt: skip
            await _respond(send, 400, body)
            return
        if not await self.control.acquire(PRIORITIES[raw_priority]):
            seconds = self.control.retry_after_s
            body = _error(
                path, 503,
                f"the router is at capacity ({self.control.max_in_flight} requests in "
                f"flight); retry after {seconds}s",
                "server_error", "overloaded",
            )  # fmt: skip
            await _respond(send, 503, body, [(b"retry-after", str(seconds).encode())])
            return
        try:
            await self._run(scope, receive, send, limit)
        finally:
            self.control.release()

    async def _run(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    more = message.get("more_body", False)
                    await self._too_large(scope["path"], send, receive, more=more)
                    raise _BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            if not refused:  # the app's own answer to a body we cut is dropped
                await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, counted, guarded)

    async def _too_large(
        self, path: str, send: Send, receive: Receive, *, more: bool = True
    ) -> None:
        self.control.metrics.body_too_large.inc()
        if more:  # once the answer is sent the server stops reading: drop the rest first
            await _drain(receive)
        body = _error(
            path, 413, f"request body larger than {self.control.max_body_bytes} bytes",
            "invalid_request_error", "request_too_large",
        )  # fmt: skip
        await _respond(send, 413, body, [(b"connection", b"close")])


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a refused body, so the client gets to read the 413.

    Bounded: at most ``DRAIN_S`` in all, and it stops when the client pauses for
    ``DRAIN_IDLE_S`` (a client that stopped sending is not waited for).
    """
    deadline = time.monotonic() + DRAIN_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(min(left, DRAIN_IDLE_S)):
                message = await receive()
        except TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _respond(
    send: Send, status: int, body: bytes | str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = body.encode() if isinstance(body, str) else body
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def install(app: FastAPI, settings: Settings, metrics: Metrics) -> AdmissionControl:
    """Put the admission middleware in front of ``app``; its control is ``app.state.admission``."""
    control = AdmissionControl(
        max_in_flight=settings.max_in_flight,
        max_queue=settings.max_queue,
        queue_timeout_s=settings.queue_timeout_s,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
    )
    app.state.admission = control
    app.add_middleware(AdmissionMiddleware, control=control)
    return control
