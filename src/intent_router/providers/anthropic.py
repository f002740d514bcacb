"""Anthropic Messages API.

``POST {base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version``; the body is
built by :mod:`.anthropic_request` (what is translated, ignored or refused is listed
there and in the README). Answers come back as one choice: ``text`` blocks joined,
``tool_use`` blocks as tool calls (``input`` as JSON text), ``stop_reason`` mapped to the
OpenAI vocabulary. When JSON output was asked for, the forced tool's input *is* the
answer: it comes back as text with finish reason ``stop``.

Streams are named SSE events: ``message_start``, ``content_block_start`` (a ``tool_use``
block opens a tool call: id and name), ``content_block_delta`` (``text_delta`` → text,
``input_json_delta`` → argument fragments), ``message_delta``, ``message_stop`` (``ping``
ignored) and ``error``, whose body ``{"type": "error", "error": {"type", "message"}}`` is
also the shape of failed non-streamed answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from intent_router.errors import UpstreamError
from intent_router.providers.anthropic_request import (
    DEFAULT_MAX_TOKENS,
    anthropic_body,
    json_tool_name,
)
from intent_router.providers.assemble import Assembler
from intent_router.providers.base import (
    AdapterEvent,
    ChatRequest,
    Choice,
    Completion,
    Endpoint,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from intent_router.providers.http import bad_answer, dig, open_sse, opt_int, post_json

API_VERSION = "2023-06-01"
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}
# Error types worth retrying on the same model (rate limits, overload, server faults).
RETRYABLE_TYPES = frozenset({"rate_limit_error", "overloaded_error", "api_error", "timeout_error"})

__all__ = ["API_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicAdapter"]


def _error(name: str, body: Any) -> UpstreamError:
    err = body.get("error") if isinstance(body, dict) else None
    kind = err.get("type", "error") if isinstance(err, dict) else "error"
    message = err.get("message", "") if isinstance(err, dict) else ""
    return UpstreamError(
        f"{kind}: {str(message)[:200]}", model=name, retryable=kind in RETRYABLE_TYPES
    )


def _finish(stop: str | None, json_mode: bool) -> str:
    if stop is None:
        return "stop"
    if json_mode and stop == "tool_use":
        return "stop"
    return STOP_REASONS.get(stop, "other")


def _usage(data: Any) -> tuple[int | None, dict[str, Any] | None]:
    """Input tokens including cache reads and writes, and OpenAI-shaped details."""
    plain = opt_int(data, "input_tokens")
    read = opt_int(data, "cache_read_input_tokens")
    written = opt_int(data, "cache_creation_input_tokens")
    if plain is None:
        return None, None
    details = {"prompt_tokens_details": {"cached_tokens": read}} if read else None
    return plain + (read or 0) + (written or 0), details


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
        return anthropic_body(endpoint, request, stream=stream)

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
        json_tool = json_tool_name(request.response_format)
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in dig(name, data, "content", kind=list):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind == "tool_use" and json_tool is not None and block.get("name") == json_tool:
                texts.append(json.dumps(block.get("input") or {}))
            elif kind == "tool_use":
                args = json.dumps(block.get("input") or {})
                calls.append(ToolCall(str(block.get("id", "")), str(block.get("name", "")), args))
        input_tokens, details = _usage(data.get("usage"))
        choice = Choice(
            text="".join(texts),
            tool_calls=tuple(calls),
            finish_reason=_finish(data.get("stop_reason"), json_tool is not None),
        )
        return Completion(
            choices=(choice,),
            input_tokens=input_tokens,
            output_tokens=opt_int(data, "usage", "output_tokens"),
            upstream_model=str(data.get("model") or endpoint.model),
            usage_details=details,
        )

    async def stream(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncGenerator[AdapterEvent, None]:
        name = endpoint.name
        asm = Assembler()
        upstream = endpoint.model
        json_tool = json_tool_name(request.response_format)
        stop: str | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        details: dict[str, Any] | None = None
        tool_index: dict[int, int] = {}  # content block index → tool call index
        json_blocks: set[int] = set()  # blocks of the forced JSON tool: their input is text
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
                    input_tokens, details = _usage(data["message"].get("usage"))
                elif kind == "content_block_start":
                    block = dig(name, data, "content_block", kind=dict)
                    index = int(data.get("index", 0))
                    if block.get("type") != "tool_use":
                        continue
                    if json_tool is not None and block.get("name") == json_tool:
                        json_blocks.add(index)
                        continue
                    tool_index[index] = len(tool_index)
                    yield asm.add(
                        ToolCallDelta(tool_index[index], str(block.get("id", "")),
                                      str(block.get("name", "")))
                    )  # fmt: skip
                elif kind == "content_block_delta":
                    index = int(data.get("index", 0))
                    delta = dig(name, data, "delta", kind=dict)
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        yield asm.add(TextDelta(str(delta["text"])))
                    elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                        piece = str(delta["partial_json"])
                        if index in json_blocks:
                            yield asm.add(TextDelta(piece))
                        elif index in tool_index:
                            yield asm.add(ToolCallDelta(tool_index[index], arguments=piece))
                elif kind == "message_delta":
                    stop = (data.get("delta") or {}).get("stop_reason") or stop
                    output_tokens = opt_int(data, "usage", "output_tokens") or output_tokens
                    more, more_details = _usage(data.get("usage"))
                    input_tokens, details = more or input_tokens, more_details or details
                elif kind == "message_stop":
                    break
            else:
                raise UpstreamError("stream ended without message_stop", model=name, retryable=True)
        asm.finish(_finish(stop, json_tool is not None))
        yield asm.end(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            upstream_model=upstream,
            usage_details=details,
        )
