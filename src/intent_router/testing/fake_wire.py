"""Wire bodies the fake upstream answers with, per provider format.

Each ``Wire`` reads a request body into an :class:`~.fake_answer.Asked` (refusing, like
the real API, what that API would refuse: unknown top-level fields, wrong roles, a tool
result without its call …) and renders answers, stream events and error bodies the way
the real API does, tool calls, images, ``n`` and logprobs included. What is answered is
decided in :mod:`.fake_answer`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from intent_router.testing.fake_answer import Answer, Asked, answer, pieces, token_logprobs

ERROR_KINDS = {
    400: ("invalid_request_error", "INVALID_ARGUMENT"),
    401: ("authentication_error", "UNAUTHENTICATED"),
    403: ("permission_error", "PERMISSION_DENIED"),
    404: ("not_found_error", "NOT_FOUND"),
    429: ("rate_limit_error", "RESOURCE_EXHAUSTED"),
    500: ("api_error", "INTERNAL"),
    503: ("overloaded_error", "UNAVAILABLE"),
}


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and "text" in p]
        return " ".join(str(t) for t in texts)
    return ""


def _only(body: dict[str, Any], allowed: frozenset[str], where: str = "") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValueError(f"{where}{unknown[0]}: Extra inputs are not permitted")


class OpenAIWire:
    name = "openai"
    FIRST_TEXT = 1  # index of the first stream event that carries answer text

    def parse(self, body: dict[str, Any]) -> Answer:
        messages = body["messages"]
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        last = users[-1] if users else -1
        content = messages[last].get("content") if users else ""
        images = [p for p in content if p.get("type") == "image_url"] if isinstance(
            content, list) else []  # fmt: skip
        choice = body.get("tool_choice")
        fmt = (body.get("response_format") or {}).get("type")
        asked = Asked(
            model=body["model"],
            texts=[_text(m.get("content")) for m in messages],
            last_user=_text(content),
            images=len(images),
            tool_results=[_text(m.get("content")) for m in messages[last + 1 :]
                          if m.get("role") == "tool"],
            tools=[t["function"]["name"] for t in body.get("tools") or []],
            forced=choice["function"]["name"] if isinstance(choice, dict) else None,
            tools_off=choice == "none",
            parallel=body.get("parallel_tool_calls") is not False,
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            json_mode=fmt in ("json_object", "json_schema"),
            n=body.get("n") or 1,
            logprobs=(body.get("top_logprobs") or 0) if body.get("logprobs") else None,
        )  # fmt: skip
        return answer(asked, "call")

    def _message(self, a: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": a.text if not a.calls else None}
        if a.calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in a.calls
            ]  # fmt: skip
        return message

    def body(self, a: Answer) -> dict[str, Any]:
        logprobs = {"content": token_logprobs(a)} if a.logprobs is not None else None
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": a.model,
            "choices": [
                {"index": i, "message": self._message(a), "finish_reason": a.finish,
                 "logprobs": logprobs}
                for i in range(a.n)
            ],
            "usage": self._usage(a),
        }  # fmt: skip

    def _usage(self, a: Answer) -> dict[str, Any]:
        n, p = len(a.words) * a.n + len(a.calls), a.prompt_tokens
        return {"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n,
                "completion_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip

    def _chunk(self, a: Answer, delta: dict[str, Any], finish: str | None, index: int = 0,
               logprobs: Any = None) -> dict[str, Any]:  # fmt: skip
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": a.model,
                "choices": [choice]}  # fmt: skip

    def stream(self, a: Answer, body: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        entries = token_logprobs(a)
        for i in range(a.n):
            events.append(sse(self._chunk(a, {"role": "assistant", "content": ""}, None, i)))
            for w, entry in zip(a.words, entries, strict=True):
                lp = {"content": [entry]} if a.logprobs is not None else None
                events.append(sse(self._chunk(a, {"content": w}, None, i, lp)))
            for k, call in enumerate(a.calls):
                first = {"index": k, "id": call.id, "type": "function",
                         "function": {"name": call.name, "arguments": ""}}  # fmt: skip
                events.append(sse(self._chunk(a, {"tool_calls": [first]}, None, i)))
                for piece in pieces(call.arguments):
                    more = {"index": k, "function": {"arguments": piece}}
                    events.append(sse(self._chunk(a, {"tool_calls": [more]}, None, i)))
            events.append(sse(self._chunk(a, {}, a.finish, i)))
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
    STOP: ClassVar[dict[str, str]] = {"stop": "end_turn", "length": "max_tokens",
                                      "tool_calls": "tool_use"}  # fmt: skip
    FIELDS = frozenset({"model", "messages", "max_tokens", "system", "temperature", "top_p",
                        "top_k", "stop_sequences", "stream", "metadata", "tools",
                        "tool_choice", "thinking", "service_tier"})  # fmt: skip

    def parse(self, body: dict[str, Any]) -> Answer:
        _only(body, self.FIELDS)
        if "max_tokens" not in body:
            raise ValueError("max_tokens: Field required")
        messages = body["messages"]
        if any(m.get("role") not in ("user", "assistant") for m in messages):
            raise ValueError("messages: roles must be user or assistant")
        blocks = [(m["role"], b) for m in messages for b in _blocks(m.get("content"))]
        used = {b["id"] for role, b in blocks if b.get("type") == "tool_use"}
        results = [b for _, b in blocks if b.get("type") == "tool_result"]
        if any(r.get("tool_use_id") not in used for r in results):
            raise ValueError("tool_result: tool_use_id matches no earlier tool_use block")
        for _, b in blocks:
            if b.get("type") == "image" and b["source"]["type"] not in ("url", "base64"):
                raise ValueError("image.source.type: must be url or base64")
        asked_at = [i for i, m in enumerate(messages) if m["role"] == "user"
                    and any(b.get("type") == "text" for b in _blocks(m["content"]))]  # fmt: skip
        last = asked_at[-1] if asked_at else -1
        last_blocks = _blocks(messages[last].get("content")) if asked_at else []
        after = [b for m in messages[last + 1 :] for b in _blocks(m.get("content"))]
        choice = body.get("tool_choice") or {}
        asked = Asked(
            model=body["model"],
            texts=[_text(body.get("system", ""))] + [_text(m.get("content")) for m in messages],
            last_user=" ".join(b["text"] for b in last_blocks if b.get("type") == "text"),
            images=sum(b.get("type") == "image" for b in last_blocks),
            tool_results=[_text(b.get("content")) for b in after if b.get("type") == "tool_result"],
            tools=[t["name"] for t in body.get("tools") or []],
            forced=choice.get("name") if choice.get("type") == "tool" else None,
            tools_off=choice.get("type") == "none",
            parallel=not choice.get("disable_parallel_tool_use"),
            max_tokens=body["max_tokens"],
        )  # fmt: skip
        return answer(asked, "toolu")

    def body(self, a: Answer) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": a.text}] if a.words else []
        content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.args}
                    for c in a.calls]  # fmt: skip
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": a.model,
            "content": content,
            "stop_reason": self.STOP[a.finish],
            "stop_sequence": None,
            "usage": {
                "input_tokens": a.prompt_tokens,
                "output_tokens": len(a.words) + len(a.calls),
            },
        }

    def stream(self, a: Answer, body: dict[str, Any]) -> list[bytes]:
        start = {**self.body(a), "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": a.prompt_tokens, "output_tokens": 1}
        events = [sse({"type": "message_start", "message": start}, "message_start")]
        index = 0
        if a.words or not a.calls:
            events += [
                sse({"type": "content_block_start", "index": 0,
                     "content_block": {"type": "text", "text": ""}}, "content_block_start"),
                sse({"type": "ping"}, "ping"),
            ]  # fmt: skip
            for w in a.words:
                delta = {"type": "content_block_delta", "index": 0,
                         "delta": {"type": "text_delta", "text": w}}  # fmt: skip
                events.append(sse(delta, "content_block_delta"))
            events.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
            index = 1
        for k, call in enumerate(a.calls, start=index):
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            events.append(sse({"type": "content_block_start", "index": k, "content_block": block},
                              "content_block_start"))  # fmt: skip
            if k == 0:
                events.append(sse({"type": "ping"}, "ping"))
            for piece in pieces(call.arguments):
                delta = {"type": "content_block_delta", "index": k,
                         "delta": {"type": "input_json_delta", "partial_json": piece}}  # fmt: skip
                events.append(sse(delta, "content_block_delta"))
            events.append(sse({"type": "content_block_stop", "index": k}, "content_block_stop"))
        end = {"type": "message_delta", "delta": {"stop_reason": self.STOP[a.finish]},
               "usage": {"output_tokens": len(a.words) + len(a.calls)}}  # fmt: skip
        events += [sse(end, "message_delta"), sse({"type": "message_stop"}, "message_stop")]
        return events

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = ERROR_KINDS.get(status, ("api_error", ""))[0]
        return {"type": "error", "error": {"type": kind, "message": message}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


class GeminiWire:
    name = "gemini"
    FIRST_TEXT = 0
    FINISH: ClassVar[dict[str, str]] = {"stop": "STOP", "length": "MAX_TOKENS",
                                        "tool_calls": "STOP"}  # fmt: skip
    FIELDS = frozenset({"contents", "systemInstruction", "tools", "toolConfig",
                        "generationConfig", "safetySettings", "cachedContent"})  # fmt: skip
    CONFIG = frozenset({"stopSequences", "responseMimeType", "responseSchema",
                        "responseJsonSchema", "candidateCount", "maxOutputTokens",
                        "temperature", "topP", "topK", "seed", "presencePenalty",
                        "frequencyPenalty", "responseLogprobs", "logprobs",
                        "thinkingConfig"})  # fmt: skip

    def __init__(self, model: str) -> None:
        self.model = model

    def parse(self, body: dict[str, Any]) -> Answer:
        _only(body, self.FIELDS)
        config = body.get("generationConfig") or {}
        _only(config, self.CONFIG, "generationConfig.")
        contents = body["contents"]
        if any(c.get("role") not in ("user", "model") for c in contents):
            raise ValueError("contents: role must be user or model")
        asked_at = [i for i, c in enumerate(contents) if c["role"] == "user"
                    and any("text" in p for p in c.get("parts", []))]  # fmt: skip
        last = asked_at[-1] if asked_at else -1
        last_parts = contents[last].get("parts", []) if asked_at else []
        after = [p for c in contents[last + 1 :] for p in c.get("parts", [])]
        system = (body.get("systemInstruction") or {}).get("parts") or []
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        allowed = calling.get("allowedFunctionNames") or []
        asked = Asked(
            model=self.model,
            texts=[_text(system)] + [_text(c.get("parts")) for c in contents],
            last_user=" ".join(p["text"] for p in last_parts if "text" in p),
            images=sum("inlineData" in p or "fileData" in p for p in last_parts),
            tool_results=[_result(p["functionResponse"]) for p in after if "functionResponse" in p],
            tools=[d["name"] for t in body.get("tools") or []
                   for d in t.get("functionDeclarations", [])],
            forced=allowed[0] if calling.get("mode") == "ANY" and len(allowed) == 1 else None,
            tools_off=calling.get("mode") == "NONE",
            max_tokens=config.get("maxOutputTokens"),
            json_mode=config.get("responseMimeType") == "application/json",
            n=config.get("candidateCount") or 1,
            logprobs=(config.get("logprobs") or 0) if config.get("responseLogprobs") else None,
        )  # fmt: skip
        return answer(asked)

    def _candidate(self, a: Answer, i: int, parts: list[dict[str, Any]], finish: str | None,
                   words: list[str]) -> dict[str, Any]:  # fmt: skip
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": i}
        if finish:
            candidate["finishReason"] = self.FINISH[finish]
        if a.logprobs is not None and words:
            chosen = [{"token": w, "logProbability": -0.5} for w in words]
            candidate["logprobsResult"] = {
                "chosenCandidates": chosen,
                "topCandidates": [{"candidates": [c] * a.logprobs} for c in chosen],
            }
        return candidate

    def _event(self, a: Answer, parts: list[dict[str, Any]], finish: str | None,
               words: list[str]) -> dict[str, Any]:  # fmt: skip
        event: dict[str, Any] = {
            "candidates": [self._candidate(a, i, parts, finish, words) for i in range(a.n)],
            "modelVersion": a.model,
        }
        if finish:
            n = len(a.words) * a.n + len(a.calls)
            event["usageMetadata"] = {"promptTokenCount": a.prompt_tokens,
                                      "candidatesTokenCount": n,
                                      "totalTokenCount": a.prompt_tokens + n}  # fmt: skip
        return event

    def _calls(self, a: Answer) -> list[dict[str, Any]]:
        return [{"functionCall": {"name": c.name, "args": c.args}} for c in a.calls]

    def body(self, a: Answer) -> dict[str, Any]:
        parts = [{"text": a.text}] if a.words else []
        return self._event(a, parts + self._calls(a), a.finish, a.words)

    def stream(self, a: Answer, body: dict[str, Any]) -> list[bytes]:
        if a.calls:
            return [sse(self._event(a, self._calls(a), a.finish, []))]
        words = a.words or [""]
        events = [sse(self._event(a, [{"text": w}], None, [w])) for w in words[:-1]]
        events.append(sse(self._event(a, [{"text": words[-1]}], a.finish, [words[-1]])))
        return events

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = ERROR_KINDS.get(status, ("", "UNKNOWN"))[1]
        return {"error": {"code": status, "message": message, "status": kind}}


def _result(response: dict[str, Any]) -> str:
    inner = response.get("response") or {}
    if set(inner) == {"result"}:
        return str(inner["result"])
    return json.dumps(inner)


Wire = OpenAIWire | AnthropicWire | GeminiWire
