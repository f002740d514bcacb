"""The caller's W3C trace context (``traceparent``), for the request's trace to continue.

The edge (:mod:`intent_router.api.request_id`) reads the header once per request and sets it
here; the record stage reads it back into the request's record. A context variable, like
OpenTelemetry's own context: each request (and the stream it answers with) sees its own
value, and nothing between the edge and the record stage has to carry it.
"""

from __future__ import annotations

import re
from contextvars import ContextVar, Token

# version 00 as the spec writes it; other versions are passed on if they keep its shape
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$")
_caller: ContextVar[str | None] = ContextVar("intent_router_traceparent", default=None)


def valid_traceparent(value: str) -> bool:
    """The header's shape (ids of all zeros are left to the trace library to refuse)."""
    return len(value) <= 256 and _TRACEPARENT.match(value) is not None and value[:2] != "ff"


def enter(traceparent: str | None) -> Token[str | None]:
    """Set the current request's caller context (None, or an invalid header: none)."""
    return _caller.set(traceparent if traceparent and valid_traceparent(traceparent) else None)


def leave(token: Token[str | None]) -> None:
    _caller.reset(token)


def caller_traceparent() -> str | None:
    """The current request's ``traceparent``, if the caller sent a valid one."""
    return _caller.get()
