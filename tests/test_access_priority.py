"""With keys on, a key's priority orders the admission queue, whatever header it sends."""

from __future__ import annotations

import asyncio
from typing import Any

from intent_router.access import Principal
from intent_router.access.context import RequestAccess
from intent_router.api.admission import AdmissionControl, AdmissionMiddleware


def scope(header: str, key_priority: int | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if key_priority is not None:
        principal = Principal(key_id=f"key_{key_priority}", name="k", priority=key_priority)
        state["access"] = RequestAccess(principal)
    headers = [(b"x-intent-router-priority", header.encode())]
    return {"type": "http", "path": "/v1/chat/completions", "headers": headers, "state": state}


async def test_a_keys_priority_wins_over_the_header_it_sends() -> None:
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    control = AdmissionControl(max_in_flight=1, max_queue=1, queue_timeout_s=30)
    middleware = AdmissionMiddleware(app, control)

    async def call(s: dict[str, Any]) -> int:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await middleware(s, receive, send)
        return int(sent[0]["status"])

    running = asyncio.create_task(call(scope("normal")))
    queued = asyncio.create_task(call(scope("normal")))
    while control.queued < 1:
        await asyncio.sleep(0)
    # A low-priority key claiming "high" is low: the queue is full of more urgent work.
    assert await asyncio.wait_for(call(scope("high", key_priority=0)), timeout=2) == 503
    assert not queued.done()  # it kept its place
    # A high-priority key saying "low" is high: it takes the queued request's place.
    urgent = asyncio.create_task(call(scope("low", key_priority=2)))
    assert await asyncio.wait_for(queued, timeout=2) == 503
    release.set()
    assert await running == 200 and await urgent == 200
