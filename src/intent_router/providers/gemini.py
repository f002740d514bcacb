"""Google Gemini ``generateContent``.

``POST {base_url}/v1beta/models/{model}:generateContent`` (streams:
``:streamGenerateContent?alt=sse``, each event a full response object) with the
``x-goog-api-key`` header. The body is built by :mod:`.gemini_request`. Each candidate
becomes a choice (``n`` → ``candidateCount``): ``text`` parts joined (thought parts left
out), ``functionCall`` parts as tool calls (Gemini's ``id`` when it sends one, else a
fresh ``call_…`` id; finish reason ``tool_calls``), ``logprobsResult`` in OpenAI's
logprobs shape. Streams send function calls whole, so each is one tool-call delta.
"""

from __future__ import annotations

import json
import uuid
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
    ToolCall,
    ToolCallDelta,
)
from intent_router.providers.gemini_request import gemini_body
from intent_router.providers.http import bad_answer, dig, error_detail, open_sse, opt_int, post_json

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}


def _finish(reason: str | None, calls: bool) -> str:
    if reason in (None, "STOP") and calls:
        return "tool_calls"
    return FINISH_REASONS.get(reason, "other") if reason else "stop"


def _logprobs(result: Any) -> list[dict[str, Any]]:
    """Gemini ``logprobsResult`` → OpenAI ``logprobs.content`` entries."""
    if not isinstance(result, dict):
        return []
    chosen = result.get("chosenCandidates") or []
    tops = result.get("topCandidates") or []
    entries = []
    for i, token in enumerate(chosen):
        top = tops[i].get("candidates", []) if i < len(tops) else []
        entries.append({
            "token": token.get("token", ""), "logprob": token.get("logProbability", 0.0),
            "bytes": None,
            "top_logprobs": [{"token": t.get("token", ""), "logprob": t.get("logProbability", 0.0),
                              "bytes": None} for t in top],
        })  # fmt: skip
    return entries


def _candidates(name: str, data: Any) -> list[tuple[int, dict[str, Any]]]:
    """(index, candidate) pairs; a blocked prompt is an error, a usage-only event has none."""
    if not isinstance(data, dict):
        raise bad_answer(name, "response is not an object")
    if "candidates" not in data:
        blocked = (data.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            raise UpstreamError(f"prompt blocked: {blocked}", model=name, status=200)
        if "usageMetadata" in data:
            return []
    candidates = dig(name, data, "candidates", kind=list)
    if not candidates:
        raise bad_answer(name, "missing field 'candidates.0'")
    out = []
    for i, c in enumerate(candidates):
        if not isinstance(c, dict):
            raise bad_answer(name, f"field 'candidates.{i}' has type {type(c).__name__}")
        out.append((int(c.get("index", i)), c))
    return out


def _pieces(candidate: dict[str, Any]) -> tuple[str, list[ToolCall]]:
    parts = (candidate.get("content") or {}).get("parts") or []
    texts, calls = [], []
    for p in parts:
        if not isinstance(p, dict) or p.get("thought"):
            continue
        if isinstance(p.get("text"), str):
            texts.append(p["text"])
        call = p.get("functionCall")
        if isinstance(call, dict):
            call_id = str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")
            args = json.dumps(call.get("args") or {})
            calls.append(ToolCall(call_id, str(call.get("name", "")), args))
    return "".join(texts), calls


def _usage(data: Any) -> tuple[int | None, int | None, dict[str, Any] | None]:
    usage = data.get("usageMetadata") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None, None, None
    out = opt_int(usage, "candidatesTokenCount")
    thoughts = opt_int(usage, "thoughtsTokenCount")
    cached = opt_int(usage, "cachedContentTokenCount")
    details: dict[str, Any] = {}
    if cached:
        details["prompt_tokens_details"] = {"cached_tokens": cached}
    if thoughts:
        details["completion_tokens_details"] = {"reasoning_tokens": thoughts}
        out = (out or 0) + thoughts
    return opt_int(usage, "promptTokenCount"), out, details or None


class GeminiAdapter:
    provider = "gemini"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        return {} if endpoint.api_key is None else {"x-goog-api-key": endpoint.api_key}

    def payload(self, endpoint: Endpoint, request: ChatRequest) -> dict[str, Any]:
        return gemini_body(endpoint, request)

    async def complete(self, endpoint: Endpoint, request: ChatRequest) -> Completion:
        name = endpoint.name
        data = await post_json(
            self._client,
            name,
            f"{endpoint.base_url}/v1beta/models/{endpoint.model}:generateContent",
            headers=self._headers(endpoint),
            payload=self.payload(endpoint, request),
            timeout_s=endpoint.timeout_s,
        )
        choices = []
        for index, candidate in _candidates(name, data) or [(0, {})]:
            text, calls = _pieces(candidate)
            logprobs = _logprobs(candidate.get("logprobsResult"))
            finish = _finish(candidate.get("finishReason"), bool(calls))
            lp = {"content": logprobs} if logprobs else None
            choices.append(Choice(index, text, tuple(calls), finish, lp))
        input_tokens, output_tokens, details = _usage(data)
        return Completion(
            choices=tuple(choices),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            upstream_model=str(data.get("modelVersion") or endpoint.model),
            usage_details=details,
        )

    async def stream(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncGenerator[AdapterEvent, None]:
        name = endpoint.name
        asm = Assembler()
        reasons: dict[int, str] = {}
        usage: tuple[int | None, int | None, dict[str, Any] | None] = (None, None, None)
        upstream = endpoint.model
        async with open_sse(
            self._client,
            name,
            f"{endpoint.base_url}/v1beta/models/{endpoint.model}:streamGenerateContent?alt=sse",
            headers=self._headers(endpoint),
            payload=self.payload(endpoint, request),
            timeout_s=endpoint.timeout_s,
        ) as events:
            async for event in events:
                data = event.json(name)
                if isinstance(data, dict) and "error" in data:
                    detail = error_detail(event.data)
                    raise UpstreamError(f"error in stream: {detail}", model=name, retryable=True)
                for index, candidate in _candidates(name, data):
                    text, calls = _pieces(candidate)
                    logprobs = tuple(_logprobs(candidate.get("logprobsResult")))
                    if text or logprobs:
                        yield asm.add(TextDelta(text, index, logprobs))
                    for call in calls:
                        position = asm.call_count(index)
                        yield asm.add(
                            ToolCallDelta(position, call.id, call.name, call.arguments, index)
                        )
                    if candidate.get("finishReason"):
                        reasons[index] = candidate["finishReason"]
                if isinstance(data.get("usageMetadata"), dict):
                    usage = _usage(data)
                upstream = str(data.get("modelVersion") or upstream)
        if not reasons:
            raise UpstreamError("stream ended without finishReason", model=name, retryable=True)
        for index, reason in reasons.items():
            asm.finish(_finish(reason, asm.has_calls(index)), index)
        yield asm.end(
            input_tokens=usage[0],
            output_tokens=usage[1],
            upstream_model=upstream,
            usage_details=usage[2],
        )
