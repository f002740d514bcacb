"""``x-request-id`` on every response: the client's own, else a new one.

A pure ASGI middleware (not ``BaseHTTPMiddleware``, which buffers and breaks streaming):
it only adds a header to ``http.response.start``. The id is also put in the request
state (``request.state.request_id``) for handlers and error pages. The caller's
``traceparent`` is kept for the request's trace (:mod:`.trace_context`).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intent_router.observability import trace_context
from intent_router.observability.record import new_request_id

HEADER = b"x-request-id"
TRACEPARENT = b"traceparent"
# A client's id is echoed only if it is short and printable; anything else is replaced.
_ACCEPTABLE = re.compile(rb"^[\x21-\x7e]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == HEADER), None)
        raw = given if given is not None and _ACCEPTABLE.match(given) else None
        request_id = raw.decode("ascii") if raw is not None else new_request_id()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER]
                message = {**message, "headers": [*headers, (HEADER, encoded)]}
            await send(message)

        parent = next((v for k, v in scope["headers"] if k == TRACEPARENT), None)
        token = trace_context.enter(parent.decode("latin-1") if parent is not None else None)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            trace_context.leave(token)
