"""Canonical request → Anthropic Messages body.

* ``system`` and ``developer`` messages → the top-level ``system`` (joined, in order);
* user text/images → ``text`` / ``image`` blocks (``url`` source, or ``base64`` from a
  data URL; ``detail`` has no Anthropic equivalent and is ignored);
* assistant ``tool_calls`` → ``tool_use`` blocks (``input`` = the parsed arguments);
* ``tool`` messages → ``tool_result`` blocks in a user turn; consecutive user-side turns
  (tool results, then maybe user text) merge into one, as the API expects;
* ``tools`` → ``name``/``description``/``input_schema``; ``tool_choice`` auto/required/
  none/function → ``auto``/``any``/``none``/``tool``; ``parallel_tool_calls: false`` →
  ``disable_parallel_tool_use``;
* ``response_format`` json_object/json_schema → a forced tool named :data:`JSON_TOOL`
  (or the schema's name) whose ``input_schema`` is the schema; its input comes back as the
  answer text (see ``anthropic.py``). Not combinable with ``tools``: refused;
* ``stop`` → ``stop_sequences``; ``top_p`` and ``top_k`` (an extra field) as is;
  ``temperature`` clamped to Anthropic's 0..1 (OpenAI's range is 0..2); ``user`` →
  ``metadata.user_id``; ``max_tokens`` defaults to :data:`DEFAULT_MAX_TOKENS`.

Ignored, documented in the README: ``seed`` (no Anthropic equivalent, best-effort anyway),
``metadata`` (OpenAI stored-completion tags), message ``name``, image ``detail``, tool
``strict``. Refused with 400 (:mod:`.unsupported`): ``n`` > 1, ``logprobs``,
``top_logprobs``, ``logit_bias``, non-zero penalties, ``reasoning_effort``, unknown
``extra`` fields.
"""

from __future__ import annotations

from typing import Any

from intent_router.errors import UnsupportedFieldError
from intent_router.providers.base import (
    SYSTEM_ROLES,
    ChatRequest,
    Endpoint,
    ImagePart,
    Message,
    ResponseFormat,
)
from intent_router.providers.unsupported import refuse
from intent_router.providers.wire import add_turn, declaration

DEFAULT_MAX_TOKENS = 4096
JSON_TOOL = "json_object"
REFUSED = {
    "n": "Anthropic returns one answer per request",
    "logprobs": "Anthropic does not return logprobs",
    "top_logprobs": "Anthropic does not return logprobs",
    "logit_bias": "Anthropic has no logit bias",
    "presence_penalty": "Anthropic has no presence penalty",
    "frequency_penalty": "Anthropic has no frequency penalty",
    "reasoning_effort": "not translated to Anthropic extended thinking",
}
_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none", "function": "tool"}


def json_tool_name(fmt: ResponseFormat | None) -> str | None:
    """The forced tool standing for JSON output, or None when the answer is plain text."""
    if fmt is None or not fmt.is_json:
        return None
    return fmt.name if fmt.type == "json_schema" and fmt.name else JSON_TOOL


def _image(part: ImagePart) -> dict[str, Any]:
    inline = part.inline()
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    media, data = inline
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


def _blocks(m: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in m.parts():
        if isinstance(part, ImagePart):
            blocks.append(_image(part))
        elif part.text:
            blocks.append({"type": "text", "text": part.text})
    for call in m.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name,
             "input": call.parsed_arguments()}
        )  # fmt: skip
    return blocks


def _turns(messages: tuple[Message, ...] | Any) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role in SYSTEM_ROLES:
            continue
        if m.role == "tool":
            role = "user"
            result = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.text()}
            blocks = [result]
        else:
            role, blocks = m.role, _blocks(m)
        add_turn(turns, role, "content", blocks)
    return turns


def _tools(endpoint: Endpoint, request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {}
    json_tool = json_tool_name(request.response_format)
    if json_tool is not None:
        if request.tools:
            raise UnsupportedFieldError(
                "response_format", endpoint.name,
                "on Anthropic JSON output is a forced tool, so it cannot be combined with tools",
            )  # fmt: skip
        fmt = request.response_format
        assert fmt is not None
        schema = dict(fmt.schema) if fmt.schema else {"type": "object"}
        describe = fmt.description or "Give the answer as this tool's input (a JSON object)."
        body["tools"] = [{"name": json_tool, "description": describe, "input_schema": schema}]
        body["tool_choice"] = {"type": "tool", "name": json_tool}
        return body
    if request.tools:
        body["tools"] = [declaration(t, "input_schema") for t in request.tools]
    choice: dict[str, Any] | None = None
    if request.tool_choice is not None:
        choice = {"type": _TOOL_CHOICE[request.tool_choice.mode]}
        if request.tool_choice.name is not None:
            choice["name"] = request.tool_choice.name
    if request.parallel_tool_calls is False and request.tools:
        choice = {"type": "auto", **(choice or {}), "disable_parallel_tool_use": True}
    if choice is not None:
        body["tool_choice"] = choice
    return body


def anthropic_body(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    refuse(endpoint, request, REFUSED, frozenset({"top_k"}))
    body: dict[str, Any] = {
        "model": endpoint.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": _turns(request.messages),
    }
    system = "\n\n".join(m.text() for m in request.messages if m.role in SYSTEM_ROLES)
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if "top_k" in request.extra:
        body["top_k"] = request.extra["top_k"]
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    body.update(_tools(endpoint, request))
    if stream:
        body["stream"] = True
    return body
