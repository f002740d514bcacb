"""Anthropic Messages API.

``POST {base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version``. System
messages move to the top-level ``system`` field; ``max_tokens`` is required, so it
defaults to :data:`DEFAULT_MAX_TOKENS`. Streams are named SSE events: ``message_start``,
``content_block_delta``, ``message_delta``, ``message_stop`` (``ping`` ignored) and
``error``, whose body ``{"type": "error", "error": {"type", "message"}}`` is also the
shape of failed non-streamed answers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx

from intent_router.errors import UpstreamError
from intent_router.providers.assemble import Assembler
from intent_router.providers.base import (
    AdapterEvent,
    ChatRequest,
    Choice,
    Completion,
    Endpoint,
    TextDelta,
)
from intent_router.providers.http import bad_answer, dig, open_sse, opt_int, post_json

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Error types worth retrying on the same model (rate limits, overload, server faults).
RETRYABLE_TYPES = frozenset({"rate_limit_error", "overloaded_error", "api_error", "timeout_error"})


def _error(name: str, body: Any) -> UpstreamError:
    err = body.get("error") if isinstance(body, dict) else None
    kind = err.get("type", "error") if isinstance(err, dict) else "error"
    message = err.get("message", "") if isinstance(err, dict) else ""
    return UpstreamError(
        f"{kind}: {str(message)[:200]}", model=name, retryable=kind in RETRYABLE_TYPES
    )


class AnthropicAdapter:
    provider = "anthropic"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if endpoint.api_key is not None:
            headers["x-api-key"] = endpoint.api_key
        return headers

    def payload(self, endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(m.text() for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": endpoint.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [
                {"role": m.role, "content": m.text()}
                for m in request.messages
                if m.role != "system"
            ],
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if stream:
            body["stream"] = True
        return body

    async def complete(self, endpoint: Endpoint, request: ChatRequest) -> Completion:
        name = endpoint.name
        data = await post_json(
            self._client,
            name,
            f"{endpoint.base_url}/v1/messages",
            headers=self._headers(endpoint),
            payload=self.payload(endpoint, request, stream=False),
            timeout_s=endpoint.timeout_s,
        )
        if isinstance(data, dict) and data.get("type") == "error":
            raise _error(name, data)
        blocks = dig(name, data, "content", kind=list)
        text = "".join(b["text"] for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        stop = data.get("stop_reason")
        return Completion(
            choices=(
                Choice(
                    text=text, finish_reason=STOP_REASONS.get(stop, "other") if stop else "stop"
                ),
            ),
            input_tokens=opt_int(data, "usage", "input_tokens"),
            output_tokens=opt_int(data, "usage", "output_tokens"),
            upstream_model=str(data.get("model") or endpoint.model),
        )

    async def stream(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncGenerator[AdapterEvent, None]:
        name = endpoint.name
        asm = Assembler()
        upstream = endpoint.model
        stop: str | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        async with open_sse(
            self._client,
            name,
            f"{endpoint.base_url}/v1/messages",
            headers=self._headers(endpoint),
            payload=self.payload(endpoint, request, stream=True),
            timeout_s=endpoint.timeout_s,
        ) as events:
            async for event in events:
                data = event.json(name)
                if not isinstance(data, dict):
                    raise bad_answer(name, "stream event is not an object")
                kind = event.event or data.get("type")
                if kind == "error":
                    raise _error(name, data)
                if kind == "message_start":
                    upstream = str(dig(name, data, "message").get("model") or upstream)
                    input_tokens = opt_int(data, "message", "usage", "input_tokens")
                elif kind == "content_block_delta":
                    delta = dig(name, data, "delta", kind=dict)
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        yield asm.add(TextDelta(str(delta["text"])))
                elif kind == "message_delta":
                    stop = (data.get("delta") or {}).get("stop_reason") or stop
                    output_tokens = opt_int(data, "usage", "output_tokens") or output_tokens
                    input_tokens = opt_int(data, "usage", "input_tokens") or input_tokens
                elif kind == "message_stop":
                    break
            else:
                raise UpstreamError("stream ended without message_stop", model=name, retryable=True)
        asm.finish(STOP_REASONS.get(stop, "other") if stop else "stop")
        yield asm.end(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            upstream_model=upstream,
        )
