"""Google Gemini ``generateContent``.

``POST {base_url}/v1beta/models/{model}:generateContent`` (streams:
``:streamGenerateContent?alt=sse``, each event a full response object) with the
``x-goog-api-key`` header. Roles become ``user``/``model``; system messages go to
``systemInstruction``; options to ``generationConfig``.
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


def _finish(reason: str | None) -> str:
    return FINISH_REASONS.get(reason, "other") if reason else "stop"


def _candidate_text(name: str, data: Any) -> tuple[str, str | None]:
    """Text and finishReason of the first candidate; a blocked prompt is an error."""
    if not isinstance(data, dict):
        raise bad_answer(name, "response is not an object")
    if "candidates" not in data:
        blocked = (data.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            raise UpstreamError(f"prompt blocked: {blocked}", model=name, status=200)
        if "usageMetadata" in data:  # a usage-only stream event
            return "", None
    candidate = dig(name, data, "candidates", 0, kind=dict)
    parts = (candidate.get("content") or {}).get("parts") or []
    text = "".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )
    return text, candidate.get("finishReason")


class GeminiAdapter:
    provider = "gemini"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        return {} if endpoint.api_key is None else {"x-goog-api-key": endpoint.api_key}

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if m.role == "assistant" else "user",
                    "parts": [{"text": m.text()}],
                }
                for m in request.messages
                if m.role != "system"
            ]
        }
        system = [{"text": m.text()} for m in request.messages if m.role == "system"]
        if system:
            body["systemInstruction"] = {"parts": system}
        config: dict[str, Any] = {}
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if config:
            body["generationConfig"] = config
        return body

    async def complete(self, endpoint: Endpoint, request: ChatRequest) -> Completion:
        name = endpoint.name
        data = await post_json(
            self._client,
            name,
            f"{endpoint.base_url}/v1beta/models/{endpoint.model}:generateContent",
            headers=self._headers(endpoint),
            payload=self.payload(request),
            timeout_s=endpoint.timeout_s,
        )
        text, reason = _candidate_text(name, data)
        return Completion(
            choices=(Choice(text=text, finish_reason=_finish(reason)),),
            input_tokens=opt_int(data, "usageMetadata", "promptTokenCount"),
            output_tokens=opt_int(data, "usageMetadata", "candidatesTokenCount"),
            upstream_model=str(data.get("modelVersion") or endpoint.model),
        )

    async def stream(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncGenerator[AdapterEvent, None]:
        name = endpoint.name
        asm = Assembler()
        reason: str | None = None
        usage: dict[str, Any] = {}
        upstream = endpoint.model
        async with open_sse(
            self._client,
            name,
            f"{endpoint.base_url}/v1beta/models/{endpoint.model}:streamGenerateContent?alt=sse",
            headers=self._headers(endpoint),
            payload=self.payload(request),
            timeout_s=endpoint.timeout_s,
        ) as events:
            async for event in events:
                data = event.json(name)
                if isinstance(data, dict) and "error" in data:
                    detail = error_detail(event.data)
                    raise UpstreamError(f"error in stream: {detail}", model=name, retryable=True)
                text, finish = _candidate_text(name, data)
                if text:
                    yield asm.add(TextDelta(text))
                reason = finish or reason
                if isinstance(data.get("usageMetadata"), dict):
                    usage = data["usageMetadata"]
                upstream = str(data.get("modelVersion") or upstream)
        if reason is None:
            raise UpstreamError("stream ended without finishReason", model=name, retryable=True)
        asm.finish(_finish(reason))
        yield asm.end(
            input_tokens=opt_int(usage, "promptTokenCount"),
            output_tokens=opt_int(usage, "candidatesTokenCount"),
            upstream_model=upstream,
        )
