"""Our OpenAI-compatible ``/v1/chat/completions``, outbound: answers as OpenAI sends them.

* :func:`completion_body` — :class:`ChatResponse` → ``chat.completion`` JSON: every
  choice (``n``), tool calls (``content`` null when the turn only calls tools), logprobs,
  usage with its details when the upstream reported them, and our ``x_router`` record.
* :func:`sse_lines` — dispatcher stream events → ``chat.completion.chunk`` SSE lines:
  a role chunk per choice, text deltas, tool-call deltas (first piece with ``id``,
  ``type`` and ``function.name``, then ``function.arguments`` fragments, keyed by
  ``index``), a finish chunk per choice, the usage chunk if asked, ``data: [DONE]``. A
  :class:`StreamError` becomes ``data: {"error": {...}}``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from intent_router.providers.base import (
    ChatResponse,
    Choice,
    DispatchEvent,
    StreamDone,
    StreamError,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _usage(response: ChatResponse) -> dict[str, Any]:
    return {
        "prompt_tokens": response.input_tokens,
        "completion_tokens": response.output_tokens,
        "total_tokens": response.input_tokens + response.output_tokens,
        **(response.usage_details or {}),
    }


def router_meta(response: ChatResponse) -> dict[str, Any]:
    """What the router did, as an extra ``x_router`` field (OpenAI clients ignore it)."""
    meta = response.to_dict()
    for answer_field in ("text", "choices", "usage_details"):
        meta.pop(answer_field)
    return meta


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _message(choice: Choice) -> dict[str, Any]:
    content = choice.text if choice.text or not choice.tool_calls else None
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": choice.refusal}
    if choice.tool_calls:
        message["tool_calls"] = [_tool_call(c) for c in choice.tool_calls]
    return message


def completion_body(
    response: ChatResponse, *, completion_id: str | None = None, created: int | None = None
) -> dict[str, Any]:
    return {
        "id": completion_id or new_completion_id(),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": response.model,
        "choices": [
            {
                "index": c.index,
                "message": _message(c),
                "finish_reason": c.finish_reason,
                "logprobs": dict(c.logprobs) if c.logprobs else None,
            }
            for c in response.choices
        ],
        "usage": _usage(response),
        "x_router": router_meta(response),
    }


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _tool_delta(event: ToolCallDelta) -> dict[str, Any]:
    piece: dict[str, Any] = {"index": event.index}
    function: dict[str, Any] = {}
    if event.id is not None:
        piece.update(id=event.id, type="function")
    if event.name is not None:
        function["name"] = event.name
    function["arguments"] = event.arguments
    piece["function"] = function
    return piece


async def sse_lines(
    events: AsyncIterator[DispatchEvent],
    *,
    model: str,
    include_usage: bool = False,
    completion_id: str | None = None,
    created: int | None = None,
) -> AsyncIterator[str]:
    """OpenAI ``chat.completion.chunk`` SSE lines for a dispatcher stream.

    Nothing is yielded before the dispatcher's first event, so a ChainExhaustedError
    surfaces from the first ``anext()`` and can still become a plain HTTP error.
    ``model`` labels chunks until the final event names the model that answered.
    """
    base = {
        "id": completion_id or new_completion_id(),
        "object": "chat.completion.chunk",
        "created": created if created is not None else int(time.time()),
    }
    started: set[int] = set()

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None,
              label: str = model, logprobs: Any = None) -> str:  # fmt: skip
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
        return _sse({**base, "model": label, "choices": [choice]})

    def opening(index: int, content: str | None) -> list[str]:
        if index in started:
            return []
        started.add(index)
        return [chunk(index, {"role": "assistant", "content": content})]

    iterator = aiter(events)
    try:
        event = await anext(iterator)  # may raise ChainExhaustedError: nothing sent yet
        while True:
            if isinstance(event, TextDelta):
                for line in opening(event.choice, ""):
                    yield line
                logprobs = {"content": list(event.logprobs)} if event.logprobs else None
                key = "refusal" if event.refusal else "content"
                yield chunk(event.choice, {key: event.text}, logprobs=logprobs)
            elif isinstance(event, ToolCallDelta):
                for line in opening(event.choice, None):
                    yield line
                yield chunk(event.choice, {"tool_calls": [_tool_delta(event)]})
            elif isinstance(event, StreamDone):
                response = event.response
                for choice in response.choices:
                    for line in opening(choice.index, ""):
                        yield line
                    yield chunk(choice.index, {}, choice.finish_reason, response.model)
                if include_usage:
                    usage = {**base, "model": response.model, "choices": [],
                             "usage": _usage(response)}  # fmt: skip
                    yield _sse({**usage, "x_router": router_meta(response)})
                yield "data: [DONE]\n\n"
                return
            else:
                yield _sse({"error": _error(event)})
                return
            following = await anext(iterator, None)
            if following is None:  # no final event: tell the client rather than hang up
                following = StreamError("stream ended unexpectedly", model, None, ())
            event = following
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _error(event: StreamError) -> dict[str, Any]:
    return {
        "message": event.message,
        "type": "upstream_error",
        "code": event.status if event.status is not None else 502,
        "model": event.model,
    }
