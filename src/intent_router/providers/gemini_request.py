"""Canonical request → Gemini ``generateContent`` body.

* ``system``/``developer`` messages → ``systemInstruction``; roles become ``user``/``model``;
* user text/images → ``text`` parts, data URLs → ``inlineData``, web URLs → ``fileData``
  (``mimeType`` from the file extension, JPEG when unknown); ``detail`` is ignored;
* assistant ``tool_calls`` → ``functionCall`` parts; ``tool`` messages → ``functionResponse``
  parts (the function name is looked up from the call id; a JSON-object result is sent as
  the response, anything else as ``{"result": text}``), consecutive turns merged;
* ``tools`` → ``functionDeclarations`` (``parametersJsonSchema``); ``tool_choice`` →
  ``toolConfig.functionCallingConfig`` (auto/none/required → AUTO/NONE/ANY, a named
  function → ANY with ``allowedFunctionNames``);
* ``response_format`` → ``responseMimeType: application/json`` (+ ``responseJsonSchema``);
* ``generationConfig``: ``max_tokens``→``maxOutputTokens``, ``temperature``, ``top_p``→
  ``topP``, ``top_k`` (an extra field) → ``topK``, ``stop``→``stopSequences``, ``seed``,
  ``n``→``candidateCount``, penalties → ``presencePenalty``/``frequencyPenalty``,
  ``logprobs``→``responseLogprobs``, ``top_logprobs``→``logprobs``, ``reasoning_effort``
  low/medium/high → ``thinkingConfig.thinkingBudget`` 1024/8192/24576.

Ignored, documented in the README: ``user``, ``metadata``, message ``name``, image
``detail``, tool ``strict``, ``parallel_tool_calls``. Refused with 400: ``logit_bias``,
other ``reasoning_effort`` values, unknown ``extra`` fields.
"""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from intent_router.errors import UnsupportedFieldError
from intent_router.providers.base import (
    SYSTEM_ROLES,
    ChatRequest,
    Endpoint,
    ImagePart,
    Message,
)
from intent_router.providers.unsupported import refuse
from intent_router.providers.wire import add_turn, declaration

REFUSED = {"logit_bias": "Gemini has no logit bias"}
THINKING_BUDGETS = {"low": 1024, "medium": 8192, "high": 24576}
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "function": "ANY"}
_CONFIG = (("max_tokens", "maxOutputTokens"), ("temperature", "temperature"),
           ("top_p", "topP"), ("seed", "seed"), ("n", "candidateCount"),
           ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"),
           ("top_logprobs", "logprobs"))  # fmt: skip


def _image(part: ImagePart) -> dict[str, Any]:
    inline = part.inline()
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    mime = mimetypes.guess_type(part.url.split("?")[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}


def _tool_response(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


def _parts(m: Message, names: dict[str, str]) -> list[dict[str, Any]]:
    if m.role == "tool":
        name = names[m.tool_call_id or ""]  # ChatRequest checked the call exists
        return [{"functionResponse": {"name": name, "response": _tool_response(m.text())}}]
    parts: list[dict[str, Any]] = []
    for part in m.parts():
        if isinstance(part, ImagePart):
            parts.append(_image(part))
        elif part.text:
            parts.append({"text": part.text})
    for call in m.tool_calls:
        parts.append({"functionCall": {"name": call.name, "args": call.parsed_arguments()}})
    return parts


def _contents(messages: tuple[Message, ...] | Any) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for m in messages:
        if m.role in SYSTEM_ROLES:
            continue
        names.update({c.id: c.name for c in m.tool_calls})
        role = "model" if m.role == "assistant" else "user"
        parts = _parts(m, names)
        add_turn(contents, role, "parts", parts)
    return contents


def _config(endpoint: Endpoint, request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for ours, theirs in _CONFIG:
        value = getattr(request, ours)
        if value is not None:
            config[theirs] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if "top_k" in request.extra:
        config["topK"] = request.extra["top_k"]
    if request.logprobs:
        config["responseLogprobs"] = True
    fmt = request.response_format
    if fmt is not None and fmt.is_json:
        config["responseMimeType"] = "application/json"
        if fmt.schema is not None:
            config["responseJsonSchema"] = dict(fmt.schema)
    if request.reasoning_effort is not None:
        budget = THINKING_BUDGETS.get(request.reasoning_effort)
        if budget is None:
            raise UnsupportedFieldError(
                "reasoning_effort", endpoint.name, "Gemini takes low, medium or high"
            )
        config["thinkingConfig"] = {"thinkingBudget": budget}
    return config


def gemini_body(endpoint: Endpoint, request: ChatRequest) -> dict[str, Any]:
    refuse(endpoint, request, REFUSED, frozenset({"top_k"}))
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    system = [{"text": m.text()} for m in request.messages if m.role in SYSTEM_ROLES]
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        declarations = [declaration(t, "parametersJsonSchema") for t in request.tools]
        body["tools"] = [{"functionDeclarations": declarations}]
    if request.tool_choice is not None:
        calling: dict[str, Any] = {"mode": _MODES[request.tool_choice.mode]}
        if request.tool_choice.name is not None:
            calling["allowedFunctionNames"] = [request.tool_choice.name]
        body["toolConfig"] = {"functionCallingConfig": calling}
    config = _config(endpoint, request)
    if config:
        body["generationConfig"] = config
    return body
