"""Our Anthropic-compatible ``/v1/messages``, outbound: answers and stream events.

* :func:`message_body` — :class:`ChatResponse` → an Anthropic ``message`` (its first
  choice: text or refusal text, then ``tool_use`` blocks);
* :func:`sse_events` — dispatcher stream events → Anthropic SSE events (``message_start``,
  ``ping``, ``content_block_start/delta/stop``, ``message_delta``, ``message_stop``; a
  :class:`StreamError` becomes an ``error`` event).

The inbound half (request → canonical) is :mod:`.anthropic_compat`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from intent_router.providers.anthropic import STOP_REASONS
from intent_router.providers.base import (
    ChatResponse,
    DispatchEvent,
    StreamDone,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)

# finish_reason (OpenAI vocabulary) → Anthropic stop_reason
_STOP_REASONS = {v: k for k, v in reversed(STOP_REASONS.items())} | {"other": "end_turn"}


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def stop_reason(finish_reason: str) -> str:
    return _STOP_REASONS.get(finish_reason, "end_turn")


def _input(call: ToolCall) -> dict[str, Any]:
    """A tool call's arguments as an object; text that is not a JSON object is kept raw."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"_raw_arguments": call.arguments}


def _usage(response: ChatResponse) -> dict[str, int]:
    return {"input_tokens": response.input_tokens, "output_tokens": response.output_tokens}


def router_meta(response: ChatResponse) -> dict[str, Any]:
    """What the router did, as an extra ``x_router`` field (Anthropic clients ignore it)."""
    meta = response.to_dict()
    for key in ("text", "choices"):
        meta.pop(key, None)
    return meta


def message_body(response: ChatResponse, *, message_id: str | None = None) -> dict[str, Any]:
    """The first choice as an Anthropic ``message`` (Anthropic has no ``n``)."""
    choice = response.choices[0]
    content: list[dict[str, Any]] = []
    text = choice.text or choice.refusal  # Anthropic has no separate refusal message
    if text:
        content.append({"type": "text", "text": text})
    for call in choice.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name,
                        "input": _input(call)})  # fmt: skip
    return {
        "id": message_id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason(choice.finish_reason),
        "stop_sequence": None,
        "usage": _usage(response),
        "x_router": router_meta(response),
    }


def _event(kind: str, payload: dict[str, Any]) -> str:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n"


def error_event(message: str, kind: str = "api_error") -> str:
    return _event("error", {"error": {"type": kind, "message": message}})


async def sse_events(
    events: AsyncIterator[DispatchEvent],
    *,
    model: str,
    input_tokens: int,
    message_id: str | None = None,
) -> AsyncIterator[str]:
    """Anthropic SSE events for a dispatcher stream (its first choice).

    ``model`` is the model that answers (known once the stream opened); ``input_tokens``
    is the estimate ``message_start`` reports until ``message_delta`` gives the real count.
    Text and each tool call become content blocks, opened and closed in order.
    """
    start: dict[str, Any] = {
        "id": message_id or new_message_id(), "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 0},
    }  # fmt: skip
    blocks = _Blocks()
    iterator = aiter(events)
    try:
        yield _event("message_start", {"message": start})
        yield _event("ping", {})
        async for event in iterator:
            if isinstance(event, TextDelta | ToolCallDelta):
                for line in blocks.add(event):
                    yield line
            elif isinstance(event, StreamDone):
                for line in blocks.close():
                    yield line
                response = event.response
                delta = {"stop_reason": stop_reason(response.finish_reason), "stop_sequence": None}
                yield _event("message_delta", {"delta": delta, "usage": _usage(response)})
                yield _event("message_stop", {})
                return
            else:
                yield error_event(f"model '{event.model}': {event.message}")
                return
        yield error_event("stream ended unexpectedly")
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class _Blocks:
    """Content blocks of a streamed message: one text block or tool call open at a time."""

    def __init__(self) -> None:
        self.index = -1
        self.open: tuple[str, int] | None = None  # ("text", 0) or ("tool", call index)

    def _start(self, key: tuple[str, int], block: dict[str, Any]) -> list[str]:
        lines = self.close()
        self.index += 1
        self.open = key
        return [
            *lines,
            _event("content_block_start", {"index": self.index, "content_block": block}),
        ]

    def _delta(self, delta: dict[str, Any]) -> str:
        return _event("content_block_delta", {"index": self.index, "delta": delta})

    def add(self, event: TextDelta | ToolCallDelta) -> list[str]:
        if event.choice != 0:
            return []
        lines: list[str] = []
        if isinstance(event, TextDelta):
            if not event.text:
                return []
            if self.open != ("text", 0):
                lines += self._start(("text", 0), {"type": "text", "text": ""})
            return [*lines, self._delta({"type": "text_delta", "text": event.text})]
        if self.open != ("tool", event.index):
            block = {"type": "tool_use", "id": event.id or f"toolu_{uuid.uuid4().hex[:24]}",
                     "name": event.name or "", "input": {}}  # fmt: skip
            lines += self._start(("tool", event.index), block)
        if event.arguments:
            lines.append(self._delta({"type": "input_json_delta", "partial_json": event.arguments}))
        return lines

    def close(self) -> list[str]:
        if self.open is None:
            return []
        self.open = None
        return [_event("content_block_stop", {"index": self.index})]
