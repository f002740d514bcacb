"""Our OpenAI-compatible ``/v1/chat/completions``, inbound: body → :class:`ChatRequest`.

No field is silently dropped: every documented Chat Completions field has a typed slot
in the canonical request, and any other top-level field is kept in ``extra`` (passed
verbatim to OpenAI-compatible upstreams, refused by the others). What cannot be
represented is refused with a :class:`QueryError` naming the field (``messages[2].content
[0].type``): content parts other than text and images, non-function tools, and message
fields other than ``role``, ``content``, ``name``, ``tool_calls``, ``tool_call_id`` (an
echoed assistant message's ``refusal``/``annotations``/``audio``/``function_call`` are
accepted when empty, since the SDK sends them back as it received them).

* :func:`parse_request` — dict → :class:`ChatCompletionRequest`, field errors named.
* :func:`to_canonical` — that model → :class:`ChatRequest`.

The outbound half (``chat.completion`` bodies and chunk SSE) is :mod:`.openai_render`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intent_router.errors import QueryError
from intent_router.openai_render import (
    completion_body,
    new_completion_id,
    router_meta,
    sse_lines,
)
from intent_router.providers.base import (
    ROLES,
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from intent_router.wire_schema import (
    HAS_USER_TEXT,
    OPENAI_MESSAGE,
    OPENAI_RESPONSE_FORMAT,
    OPENAI_STOP,
    OPENAI_TOOL,
    OPENAI_TOOL_CHOICE,
    TOP_LOGPROBS_NEEDS_LOGPROBS,
)

# Fields of an assistant message the SDK echoes back; accepted only when empty.
_ECHOED_EMPTY = ("refusal", "annotations", "audio", "function_call")
_MESSAGE_FIELDS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The Chat Completions body: documented fields typed, others in ``model_extra``."""

    model_config = ConfigDict(extra="allow", json_schema_extra=TOP_LOGPROBS_NEEDS_LOGPROBS)
    model: str | None = None
    messages: list[dict[str, Any]] = Field(
        min_length=1, json_schema_extra={**HAS_USER_TEXT, "items": OPENAI_MESSAGE}
    )
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    stop: str | list[str] | None = Field(default=None, json_schema_extra=OPENAI_STOP)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = Field(
        default=None, json_schema_extra={"items": OPENAI_TOOL}
    )
    tool_choice: str | dict[str, Any] | None = Field(
        default=None, json_schema_extra=OPENAI_TOOL_CHOICE
    )
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = Field(
        default=None, json_schema_extra=OPENAI_RESPONSE_FORMAT
    )
    user: str | None = None
    metadata: dict[str, str] | None = None
    reasoning_effort: str | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


def parse_request(body: Mapping[str, Any]) -> ChatCompletionRequest:
    """Validate an inbound body; errors become one QueryError naming the field."""
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _path(err["loc"])
        raise QueryError(f"{where}: {err['msg']}" if where else err["msg"]) from exc


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def to_canonical(body: ChatCompletionRequest) -> ChatRequest:
    """The canonical request; every field of the body lands in a slot or in ``extra``."""
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > 4:
        raise QueryError("stop: at most 4 stop sequences")
    if body.top_logprobs is not None and not body.logprobs:
        raise QueryError("top_logprobs: requires logprobs to be true")
    tools = tuple(_tool(i, t) for i, t in enumerate(body.tools or []))
    stream_options = body.stream_options.model_dump() if body.stream_options else None
    return ChatRequest(
        messages=[_message(i, m) for i, m in enumerate(body.messages)],
        max_tokens=body.max_completion_tokens or body.max_tokens,
        max_tokens_field="max_completion_tokens" if body.max_completion_tokens else "max_tokens",
        temperature=body.temperature,
        stop=stop,
        stream=bool(body.stream),
        top_p=body.top_p,
        n=body.n,
        seed=body.seed,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        logit_bias=body.logit_bias,
        logprobs=body.logprobs,
        top_logprobs=body.top_logprobs,
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice),
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=_response_format(body.response_format),
        user=body.user,
        metadata=body.metadata,
        reasoning_effort=body.reasoning_effort,
        stream_options=stream_options,
        extra=dict(body.model_extra or {}),
    )


# -- messages ----------------------------------------------------------------------------


def _message(i: int, raw: dict[str, Any]) -> Message:
    where = f"messages[{i}]"
    role = raw.get("role")
    if role not in ROLES:
        known = "/".join(sorted(ROLES))
        raise QueryError(f"{where}.role: '{role}' is not one of {known}")
    for key, value in raw.items():
        if key in _MESSAGE_FIELDS or (key in _ECHOED_EMPTY and not value):
            continue
        raise QueryError(f"{where}.{key}: this message field is not supported")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise QueryError(f"{where}.name: must be a string")
    call_id = raw.get("tool_call_id")
    if call_id is not None and not isinstance(call_id, str):
        raise QueryError(f"{where}.tool_call_id: must be a string")
    calls = raw.get("tool_calls") or []
    if not isinstance(calls, list):
        raise QueryError(f"{where}.tool_calls: must be a list")
    return Message(
        role=role,
        content=_content(f"{where}.content", raw.get("content", "")),
        name=name,
        tool_calls=[_tool_call(f"{where}.tool_calls[{j}]", c) for j, c in enumerate(calls)],
        tool_call_id=call_id,
    )


def _content(where: str, raw: Any) -> str | tuple[ContentPart, ...] | None:
    if raw is None or isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise QueryError(f"{where}: must be a string, a list of parts or null")
    parts: list[ContentPart] = []
    for j, part in enumerate(raw):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image_url":
            parts.append(_image(at, part.get("image_url")))
        elif kind in ("text", None):
            raise QueryError(f"{at}: a part needs 'type' and, for text, a string 'text'")
        else:
            raise QueryError(f"{at}.type: content part '{kind}' is not supported (text, image_url)")
    return tuple(parts)


def _image(where: str, raw: Any) -> ImagePart:
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        raise QueryError(f"{where}.image_url: needs a string 'url'")
    detail = raw.get("detail")
    if detail not in (None, "auto", "low", "high"):
        raise QueryError(f"{where}.image_url.detail: must be auto, low or high")
    try:
        return ImagePart(raw["url"], detail)
    except QueryError as exc:
        raise QueryError(f"{where}.{exc}") from exc


def _tool_call(where: str, raw: Any) -> ToolCall:
    fn = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or raw.get("type", "function") != "function":
        raise QueryError(f"{where}: only function tool calls are supported")
    if not isinstance(raw.get("id"), str) or not isinstance(fn, dict):
        raise QueryError(f"{where}: needs a string 'id' and a 'function' object")
    if not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments", ""), str):
        raise QueryError(f"{where}.function: needs a string 'name' and string 'arguments'")
    return ToolCall(raw["id"], fn["name"], fn.get("arguments", ""))


# -- tools and output format ---------------------------------------------------------------


def _tool(i: int, raw: dict[str, Any]) -> Tool:
    where = f"tools[{i}]"
    if raw.get("type") != "function":
        raise QueryError(f"{where}.type: only 'function' tools are supported")
    fn = raw.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise QueryError(f"{where}.function: needs a string 'name'")
    unknown = set(fn) - {"name", "description", "parameters", "strict"}
    if unknown:
        raise QueryError(f"{where}.function.{sorted(unknown)[0]}: unknown field")
    params = fn.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise QueryError(f"{where}.function.parameters: must be a JSON Schema object")
    return Tool(fn["name"], fn.get("description"), params, fn.get("strict"))


def _tool_choice(raw: str | dict[str, Any] | None) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)  # type: ignore[arg-type]
    fn = raw.get("function") if isinstance(raw, dict) else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(name, str):
        return ToolChoice("function", name)
    raise QueryError(
        "tool_choice: must be 'auto', 'none', 'required' or "
        '{"type": "function", "function": {"name": ...}}'
    )


def _response_format(raw: dict[str, Any] | None) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind != "json_schema":
        raise QueryError("response_format.type: must be text, json_object or json_schema")
    spec = raw.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise QueryError("response_format.json_schema: needs a string 'name'")
    schema = spec.get("schema", {"type": "object"})
    if not isinstance(schema, dict):
        raise QueryError("response_format.json_schema.schema: must be a JSON Schema object")
    return ResponseFormat(
        "json_schema", spec["name"], schema, spec.get("description"), spec.get("strict")
    )


__all__ = [
    "ChatCompletionRequest",
    "completion_body",
    "new_completion_id",
    "parse_request",
    "router_meta",
    "sse_lines",
    "to_canonical",
]
