"""Wire bodies the fake upstream answers with, per provider format.

Each ``Wire`` reads the requested model and the prompt from a request body and renders
answers, stream events and error bodies the way the real API does. The answer is
deterministic: ``[{model}] {last user text}``, one token per word.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

ERROR_KINDS = {
    400: ("invalid_request_error", "INVALID_ARGUMENT"),
    401: ("authentication_error", "UNAUTHENTICATED"),
    403: ("permission_error", "PERMISSION_DENIED"),
    404: ("not_found_error", "NOT_FOUND"),
    429: ("rate_limit_error", "RESOURCE_EXHAUSTED"),
    500: ("api_error", "INTERNAL"),
    503: ("overloaded_error", "UNAVAILABLE"),
}


@dataclass(frozen=True, slots=True)
class Answer:
    model: str
    words: list[str]  # answer pieces, each one token
    prompt_tokens: int
    finish: str  # "stop" or "length"

    @property
    def text(self) -> str:
        return "".join(self.words)


def answer(model: str, texts: list[str], last_user: str, max_tokens: int | None) -> Answer:
    words = re.findall(r"\S+\s*", f"[{model}] {last_user}".strip())
    finish = "stop"
    if max_tokens is not None and len(words) > max_tokens:
        words, finish = words[:max_tokens], "length"
        words[-1] = words[-1].rstrip()
    prompt_tokens = sum(len(t) // 4 + 1 for t in texts)
    return Answer(model, words, prompt_tokens, finish)


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class OpenAIWire:
    name = "openai"
    FIRST_TEXT = 1  # index of the first stream event that carries answer text

    def parse(self, body: dict[str, Any]) -> Answer:
        messages = body["messages"]
        texts = [_text(m.get("content")) for m in messages]
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        return answer(body["model"], texts, users[-1] if users else "", body.get("max_tokens"))

    def body(self, a: Answer) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": a.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": a.text},
                    "finish_reason": a.finish,
                }
            ],
            "usage": self._usage(a),
        }

    def _usage(self, a: Answer) -> dict[str, int]:
        n, p = len(a.words), a.prompt_tokens
        return {"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n}

    def _chunk(self, a: Answer, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": a.model,
                "choices": [choice]}  # fmt: skip

    def stream(self, a: Answer, body: dict[str, Any]) -> list[bytes]:
        events = [sse(self._chunk(a, {"role": "assistant", "content": ""}, None))]
        events += [sse(self._chunk(a, {"content": w}, None)) for w in a.words]
        events.append(sse(self._chunk(a, {}, a.finish)))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {**self._chunk(a, {}, None), "choices": [], "usage": self._usage(a)}
            events.append(sse(usage))
        events.append(b"data: [DONE]\n\n")
        return events

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = ERROR_KINDS.get(status, ("api_error", ""))[0]
        return {"error": {"message": message, "type": kind, "code": status}}


class AnthropicWire:
    name = "anthropic"
    FIRST_TEXT = 3
    STOP: ClassVar[dict[str, str]] = {"stop": "end_turn", "length": "max_tokens"}

    def parse(self, body: dict[str, Any]) -> Answer:
        if "max_tokens" not in body:
            raise ValueError("max_tokens: Field required")
        messages = body["messages"]
        if any(m.get("role") not in ("user", "assistant") for m in messages):
            raise ValueError("messages: roles must be user or assistant")
        texts = [_text(body.get("system", ""))] + [_text(m.get("content")) for m in messages]
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        return answer(body["model"], texts, users[-1] if users else "", body["max_tokens"])

    def body(self, a: Answer) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": a.model,
            "content": [{"type": "text", "text": a.text}],
            "stop_reason": self.STOP[a.finish],
            "stop_sequence": None,
            "usage": {"input_tokens": a.prompt_tokens, "output_tokens": len(a.words)},
        }

    def stream(self, a: Answer, body: dict[str, Any]) -> list[bytes]:
        start = {**self.body(a), "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": a.prompt_tokens, "output_tokens": 1}
        events = [
            sse({"type": "message_start", "message": start}, "message_start"),
            sse({"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}}, "content_block_start"),
            sse({"type": "ping"}, "ping"),
        ]  # fmt: skip
        for w in a.words:
            delta = {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": w}}  # fmt: skip
            events.append(sse(delta, "content_block_delta"))
        end = {"type": "message_delta", "delta": {"stop_reason": self.STOP[a.finish]},
               "usage": {"output_tokens": len(a.words)}}  # fmt: skip
        events += [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse(end, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]
        return events

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = ERROR_KINDS.get(status, ("api_error", ""))[0]
        return {"type": "error", "error": {"type": kind, "message": message}}


class GeminiWire:
    name = "gemini"
    FIRST_TEXT = 0
    FINISH: ClassVar[dict[str, str]] = {"stop": "STOP", "length": "MAX_TOKENS"}

    def __init__(self, model: str) -> None:
        self.model = model

    def parse(self, body: dict[str, Any]) -> Answer:
        contents = body["contents"]
        if any(c.get("role") not in ("user", "model") for c in contents):
            raise ValueError("contents: role must be user or model")
        system = (body.get("systemInstruction") or {}).get("parts") or []
        texts = [_text(system)] + [_text(c.get("parts")) for c in contents]
        users = [_text(c.get("parts")) for c in contents if c.get("role") == "user"]
        limit = (body.get("generationConfig") or {}).get("maxOutputTokens")
        return answer(self.model, texts, users[-1] if users else "", limit)

    def _event(self, a: Answer, text: str, finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
        if finish:
            candidate["finishReason"] = self.FINISH[finish]
        event: dict[str, Any] = {"candidates": [candidate], "modelVersion": a.model}
        if finish:
            n = len(a.words)
            event["usageMetadata"] = {"promptTokenCount": a.prompt_tokens,
                                      "candidatesTokenCount": n,
                                      "totalTokenCount": a.prompt_tokens + n}  # fmt: skip
        return event

    def body(self, a: Answer) -> dict[str, Any]:
        return self._event(a, a.text, a.finish)

    def stream(self, a: Answer, body: dict[str, Any]) -> list[bytes]:
        words = a.words or [""]
        events = [sse(self._event(a, w, None)) for w in words[:-1]]
        events.append(sse(self._event(a, words[-1], a.finish)))
        return events

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = ERROR_KINDS.get(status, ("", "UNKNOWN"))[1]
        return {"error": {"code": status, "message": message, "status": kind}}


Wire = OpenAIWire | AnthropicWire | GeminiWire
