"""OpenAI Chat Completions, and every compatible server (vLLM, Ollama, Together, Groq).

``POST {base_url}/chat/completions`` with ``Authorization: Bearer`` (omitted when the
model has no key, e.g. a local vLLM). The request goes out as the client sent it: every
field of the canonical request under its OpenAI name (``max_completion_tokens`` when the
client used that name), ``developer`` messages as ``developer``, and the unknown fields
of ``extra`` verbatim (vLLM's ``top_k``, ``repetition_penalty`` …). Streams are
``data: {chunk}`` lines ending with ``data: [DONE]``; usage comes in a last chunk thanks
to ``stream_options.include_usage``, which is always asked for.
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
    ImagePart,
    Message,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from intent_router.providers.http import bad_answer, dig, error_detail, open_sse, opt_int, post_json

_DETAILS = ("prompt_tokens_details", "completion_tokens_details")
# Canonical fields sent under the same name when set.
_PLAIN = ("temperature", "top_p", "n", "seed", "presence_penalty", "frequency_penalty",
          "logit_bias", "logprobs", "top_logprobs", "parallel_tool_calls", "user", "metadata",
          "reasoning_effort")  # fmt: skip


def wire_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if m.content is None or isinstance(m.content, str):
        out["content"] = m.content
    else:
        out["content"] = [_part(p) for p in m.content]
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        image: dict[str, Any] = {"url": part.url}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    return {"type": "text", "text": part.text}


def _options(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = dict(request.extra)
    for name in _PLAIN:
        value = getattr(request, name)
        if value is not None:
            body[name] = dict(value) if name in ("logit_bias", "metadata") else value
    if request.max_tokens is not None:
        body[request.max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = [{"type": "function", "function": _function(t)} for t in request.tools]
    if request.tool_choice is not None:
        choice = request.tool_choice
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}}
            if choice.mode == "function"
            else choice.mode
        )
    fmt = request.response_format
    if fmt is not None:
        body["response_format"] = {"type": fmt.type}
        if fmt.type == "json_schema":
            spec: dict[str, Any] = {"name": fmt.name, "schema": dict(fmt.schema or {})}
            if fmt.description is not None:
                spec["description"] = fmt.description
            if fmt.strict is not None:
                spec["strict"] = fmt.strict
            body["response_format"]["json_schema"] = spec
    return body


def _function(tool: Any) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        fn["description"] = tool.description
    if tool.parameters is not None:
        fn["parameters"] = dict(tool.parameters)
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return fn


def _tool_calls(name: str, raw: Any) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    calls = []
    for i, call in enumerate(raw if isinstance(raw, list) else [None]):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad_answer(name, f"tool_calls[{i}] lacks function.name")
        calls.append(ToolCall(str(call.get("id") or ""), fn["name"], fn.get("arguments") or ""))
    return tuple(calls)


def _choice(name: str, i: int, raw: Any) -> Choice:
    message = dig(name, raw, "message", kind=dict)
    text = message.get("content")
    if text is not None and not isinstance(text, str):
        raise bad_answer(name, f"field 'choices.{i}.message.content' is not text")
    return Choice(
        index=int(raw.get("index", i)),
        text=text or "",
        tool_calls=_tool_calls(name, message.get("tool_calls")),
        finish_reason=raw.get("finish_reason") or "stop",
        logprobs=raw.get("logprobs") or None,
        refusal=message.get("refusal"),
    )


def _details(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    found = {k: usage[k] for k in _DETAILS if isinstance(usage.get(k), dict)}
    return found or None


class OpenAIAdapter:
    provider = "openai"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        if endpoint.api_key is None:
            return {}
        return {"Authorization": f"Bearer {endpoint.api_key}"}

    def payload(self, endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": endpoint.model,
            "messages": [wire_message(m) for m in request.messages],
            **_options(request),
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {**(request.stream_options or {}), "include_usage": True}
        return body

    async def complete(self, endpoint: Endpoint, request: ChatRequest) -> Completion:
        data = await post_json(
            self._client,
            endpoint.name,
            f"{endpoint.base_url}/chat/completions",
            headers=self._headers(endpoint),
            payload=self.payload(endpoint, request, stream=False),
            timeout_s=endpoint.timeout_s,
        )
        name = endpoint.name
        choices = dig(name, data, "choices", kind=list)
        if not choices:
            raise bad_answer(name, "no choices")
        return Completion(
            choices=tuple(_choice(name, i, c) for i, c in enumerate(choices)),
            input_tokens=opt_int(data, "usage", "prompt_tokens"),
            output_tokens=opt_int(data, "usage", "completion_tokens"),
            upstream_model=str(data.get("model") or endpoint.model),
            usage_details=_details(data.get("usage")),
        )

    async def stream(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncGenerator[AdapterEvent, None]:
        name = endpoint.name
        asm = Assembler()
        usage: dict[str, Any] = {}
        upstream = endpoint.model
        async with open_sse(
            self._client,
            name,
            f"{endpoint.base_url}/chat/completions",
            headers=self._headers(endpoint),
            payload=self.payload(endpoint, request, stream=True),
            timeout_s=endpoint.timeout_s,
        ) as events:
            async for event in events:
                if event.data.strip() == "[DONE]":
                    break
                chunk = event.json(name)
                if not isinstance(chunk, dict):
                    raise bad_answer(name, "stream chunk is not an object")
                if "error" in chunk:
                    detail = error_detail(event.data)
                    raise UpstreamError(f"error in stream: {detail}", model=name, retryable=True)
                upstream = str(chunk.get("model") or upstream)
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    for delta in _deltas(name, choice):
                        yield asm.add(delta)
                    if choice.get("finish_reason"):
                        asm.finish(choice["finish_reason"], int(choice.get("index", 0)))
            else:
                if not asm.has_finish():
                    raise UpstreamError(
                        "stream ended without [DONE] or finish_reason", model=name, retryable=True
                    )
        yield asm.end(
            input_tokens=opt_int(usage, "prompt_tokens"),
            output_tokens=opt_int(usage, "completion_tokens"),
            upstream_model=upstream,
            usage_details=_details(usage),
        )


def _deltas(name: str, choice: Any) -> list[TextDelta | ToolCallDelta]:
    """The text and tool-call pieces of one streamed choice."""
    if not isinstance(choice, dict):
        raise bad_answer(name, "stream choice is not an object")
    index = int(choice.get("index", 0))
    delta = choice.get("delta") or {}
    out: list[TextDelta | ToolCallDelta] = []
    logprobs = (choice.get("logprobs") or {}).get("content") or ()
    if (isinstance(delta.get("content"), str) and delta["content"]) or logprobs:
        out.append(TextDelta(delta.get("content") or "", index, tuple(logprobs)))
    if isinstance(delta.get("refusal"), str) and delta["refusal"]:
        out.append(TextDelta(delta["refusal"], index, refusal=True))
    for call in delta.get("tool_calls") or []:
        fn = (call.get("function") or {}) if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            raise bad_answer(name, "malformed tool call delta")
        out.append(
            ToolCallDelta(
                int(call.get("index", 0)), call.get("id"), fn.get("name"),
                fn.get("arguments") or "", index,
            )
        )  # fmt: skip
    return out
