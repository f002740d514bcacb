"""OpenAI Chat Completions, and every compatible server (vLLM, Ollama, Together, Groq).

``POST {base_url}/chat/completions`` with ``Authorization: Bearer`` (omitted when the
model has no key, e.g. a local vLLM). Streams are ``data: {chunk}`` lines ending with
``data: [DONE]``; usage comes in a last chunk thanks to ``stream_options.include_usage``.
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
            "messages": [{"role": m.role, "content": m.text()} for m in request.messages],
        }
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop"] = list(request.stop)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
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
        message = dig(name, data, "choices", 0, "message", kind=dict)
        text = message.get("content")
        if text is None:
            text = ""
        elif not isinstance(text, str):
            raise bad_answer(name, "field 'choices.0.message.content' is not text")
        return Completion(
            choices=(
                Choice(text=text, finish_reason=data["choices"][0].get("finish_reason") or "stop"),
            ),
            input_tokens=opt_int(data, "usage", "prompt_tokens"),
            output_tokens=opt_int(data, "usage", "completion_tokens"),
            upstream_model=str(data.get("model") or endpoint.model),
        )

    async def stream(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncGenerator[AdapterEvent, None]:
        name = endpoint.name
        asm = Assembler()
        finish: str | None = None
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
                    delta = choice.get("delta") or {}
                    if isinstance(delta.get("content"), str) and delta["content"]:
                        yield asm.add(TextDelta(delta["content"]))
                    finish = choice.get("finish_reason") or finish
            else:
                if finish is None:
                    raise UpstreamError(
                        "stream ended without [DONE] or finish_reason", model=name, retryable=True
                    )
        asm.finish(finish or "stop")
        yield asm.end(
            input_tokens=opt_int(usage, "prompt_tokens"),
            output_tokens=opt_int(usage, "completion_tokens"),
            upstream_model=upstream,
        )
