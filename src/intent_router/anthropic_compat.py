"""Pure translation for our Anthropic-compatible ``/v1/messages`` (no FastAPI here).

Mirrors :mod:`intent_router.openai_compat`:

* :class:`MessagesRequest` — the inbound Messages body (unknown top-level fields are kept
  and passed on as extras; unknown content block types are refused, naming the block);
* :func:`to_canonical` — body → :class:`ChatRequest`;
* :func:`message_body` — :class:`ChatResponse` → an Anthropic ``message``;
* :func:`sse_events` — dispatcher stream events → Anthropic SSE events (``message_start``,
  ``ping``, ``content_block_start/delta/stop``, ``message_delta``, ``message_stop``; a
  :class:`StreamError` becomes an ``error`` event).

Translation (the rest is one-to-one):

* ``system`` (a string or text blocks) → one system message;
* ``tool_use`` blocks → the assistant turn's tool calls (``input`` as JSON arguments);
* ``tool_result`` blocks → ``tool`` messages, before the rest of the user turn;
  ``is_error: true`` prefixes the result text with ``Error:``;
* images (``base64`` or ``url`` sources) → image parts (data URLs for base64);
* answers: text (or an OpenAI refusal message, with ``stop_reason: refusal``) and tool
  calls → ``text`` and ``tool_use`` blocks;
* ``tools[].input_schema`` → function parameters; ``tool_choice`` ``auto`` / ``any`` /
  ``tool`` / ``none`` → ``auto`` / ``required`` / the named function / ``none``, and
  ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``;
* ``stop_sequences`` → ``stop``; ``metadata.user_id`` → ``user``; ``top_k`` and any other
  unknown field → extras (forwarded to OpenAI-compatible upstreams, refused by others);
* ``cache_control`` on blocks is accepted and not forwarded: it is a caching hint, and the
  answer does not depend on it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from intent_router.providers.anthropic import STOP_REASONS
from intent_router.providers.base import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    DispatchEvent,
    ImagePart,
    Message,
    StreamDone,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from intent_router.providers.tools import ToolMode
from intent_router.wire_schema import BASE64, HAS_USER_TEXT

_EMPTY: tuple[Any, ...] = (None, "", [], {})
_TOOL_MODES: dict[str, ToolMode] = {"auto": "auto", "any": "required", "none": "none"}
# finish_reason (OpenAI vocabulary) → Anthropic stop_reason
_STOP_REASONS = {v: k for k, v in reversed(STOP_REASONS.items())} | {"other": "end_turn"}


class _Block(BaseModel):
    """A content block. Unknown keys are refused unless empty: clients echo answer blocks
    back as their SDK parsed them (``"caller": null``, ``"toolset_name": null`` …)."""

    model_config = ConfigDict(extra="forbid")
    cache_control: dict[str, Any] | None = Field(default=None, description="accepted, unused")

    @model_validator(mode="before")
    @classmethod
    def _drop_empty_unknown(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: v for k, v in data.items() if k in cls.model_fields or v not in _EMPTY}


class TextBlock(_Block):
    type: Literal["text"]
    text: str
    citations: list[dict[str, Any]] | None = None


class Base64Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["base64"]
    media_type: str = Field(pattern=r"^image/[A-Za-z0-9.+-]+$")
    data: str = Field(pattern=f"^{BASE64}$")


class UrlSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["url"]
    url: str = Field(pattern=r"^https?://")


class ImageBlock(_Block):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]

    def part(self) -> ImagePart:
        source = self.source
        if isinstance(source, UrlSource):
            return ImagePart(source.url)
        return ImagePart(f"data:{source.media_type};base64,{source.data}")


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[TextBlock] = ""
    is_error: bool = False

    def text(self) -> str:
        content = self.content
        text = content if isinstance(content, str) else " ".join(b.text for b in content)
        return f"Error: {text}" if self.is_error else text


UserBlock = Annotated[TextBlock | ImageBlock | ToolResultBlock, Field(discriminator="type")]
AssistantBlock = Annotated[TextBlock | ToolUseBlock, Field(discriminator="type")]


class UserTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user"]
    content: str | list[UserBlock]


class AssistantTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["assistant"]
    content: str | list[AssistantBlock]


Turn = Annotated[UserTurn | AssistantTurn, Field(discriminator="role")]


class ToolDef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    cache_control: dict[str, Any] | None = None


class ToolChoiceMode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["auto", "any", "none"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["tool"]
    name: str = Field(min_length=1)
    disable_parallel_tool_use: bool | None = None


ToolChoiceIn = Annotated[ToolChoiceMode | ToolChoiceTool, Field(discriminator="type")]


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = None


class CountTokensRequest(BaseModel):
    """What ``/v1/messages/count_tokens`` reads: the prompt side of a Messages request."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, description="'auto' routes; a configured name pins it")
    messages: list[Turn] = Field(min_length=1, json_schema_extra=HAS_USER_TEXT)
    system: str | list[TextBlock] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: ToolChoiceIn | None = None


class MessagesRequest(CountTokensRequest):
    """The Anthropic Messages body; fields it does not list are accepted and passed on."""

    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    metadata: Metadata | None = None
    stream: bool = False


def to_canonical(body: CountTokensRequest) -> ChatRequest:
    messages: list[Message] = []
    if body.system:
        system = body.system
        content = system if isinstance(system, str) else tuple(TextPart(b.text) for b in system)
        messages.append(Message("system", content))
    for turn in body.messages:
        messages.extend(_user(turn) if isinstance(turn, UserTurn) else [_assistant(turn)])
    extra = dict(body.model_extra or {})
    full = body if isinstance(body, MessagesRequest) else None
    if full is not None and full.top_k is not None:
        extra["top_k"] = full.top_k
    choice = body.tool_choice
    return ChatRequest(
        messages=messages,
        max_tokens=full.max_tokens if full else None,
        temperature=full.temperature if full else None,
        top_p=full.top_p if full else None,
        stop=full.stop_sequences or () if full else (),
        stream=full.stream if full else False,
        tools=[Tool(t.name, t.description, t.input_schema) for t in body.tools or ()],
        tool_choice=_tool_choice(choice) if choice else None,
        parallel_tool_calls=False if choice and choice.disable_parallel_tool_use else None,
        user=full.metadata.user_id if full and full.metadata else None,
        extra=extra,
    )


def _user(turn: UserTurn) -> list[Message]:
    if isinstance(turn.content, str):
        return [Message("user", turn.content)]
    results = [
        Message("tool", b.text(), tool_call_id=b.tool_use_id)
        for b in turn.content
        if isinstance(b, ToolResultBlock)
    ]
    parts: list[ContentPart] = [
        TextPart(b.text) if isinstance(b, TextBlock) else b.part()
        for b in turn.content
        if isinstance(b, TextBlock | ImageBlock)
    ]
    return results + ([Message("user", tuple(parts))] if parts or not results else [])


def _assistant(turn: AssistantTurn) -> Message:
    if isinstance(turn.content, str):
        return Message("assistant", turn.content)
    text = "".join(b.text for b in turn.content if isinstance(b, TextBlock))
    calls = [
        ToolCall(b.id, b.name, json.dumps(b.input))
        for b in turn.content
        if isinstance(b, ToolUseBlock)
    ]
    return Message("assistant", text if text or not calls else None, tool_calls=calls)


def _tool_choice(choice: ToolChoiceMode | ToolChoiceTool) -> ToolChoice:
    if isinstance(choice, ToolChoiceTool):
        return ToolChoice("function", choice.name)
    return ToolChoice(_TOOL_MODES[choice.type])


# -- answers -----------------------------------------------------------------------------


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def stop_reason(finish_reason: str) -> str:
    return _STOP_REASONS.get(finish_reason, "end_turn")


def _input(call: ToolCall) -> dict[str, Any]:
    """A tool call's arguments as an object; text that is not a JSON object is kept raw."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"_raw_arguments": call.arguments}


def _usage(response: ChatResponse) -> dict[str, int]:
    return {"input_tokens": response.input_tokens, "output_tokens": response.output_tokens}


def router_meta(response: ChatResponse) -> dict[str, Any]:
    """What the router did, as an extra ``x_router`` field (Anthropic clients ignore it)."""
    meta = response.to_dict()
    for key in ("text", "choices"):
        meta.pop(key, None)
    return meta


def message_body(response: ChatResponse, *, message_id: str | None = None) -> dict[str, Any]:
    """The first choice as an Anthropic ``message`` (Anthropic has no ``n``)."""
    choice = response.choices[0]
    content: list[dict[str, Any]] = []
    text = choice.text or choice.refusal  # Anthropic has no separate refusal message
    if text:
        content.append({"type": "text", "text": text})
    for call in choice.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name,
                        "input": _input(call)})  # fmt: skip
    return {
        "id": message_id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason(choice.finish_reason),
        "stop_sequence": None,
        "usage": _usage(response),
        "x_router": router_meta(response),
    }


def _event(kind: str, payload: dict[str, Any]) -> str:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n"


def error_event(message: str, kind: str = "api_error") -> str:
    return _event("error", {"error": {"type": kind, "message": message}})


async def sse_events(
    events: AsyncIterator[DispatchEvent],
    *,
    model: str,
    input_tokens: int,
    message_id: str | None = None,
) -> AsyncIterator[str]:
    """Anthropic SSE events for a dispatcher stream (its first choice).

    ``model`` is the model that answers (known once the stream opened); ``input_tokens``
    is the estimate ``message_start`` reports until ``message_delta`` gives the real count.
    Text and each tool call become content blocks, opened and closed in order.
    """
    start: dict[str, Any] = {
        "id": message_id or new_message_id(), "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 0},
    }  # fmt: skip
    blocks = _Blocks()
    iterator = aiter(events)
    try:
        yield _event("message_start", {"message": start})
        yield _event("ping", {})
        async for event in iterator:
            if isinstance(event, TextDelta | ToolCallDelta):
                for line in blocks.add(event):
                    yield line
            elif isinstance(event, StreamDone):
                for line in blocks.close():
                    yield line
                response = event.response
                delta = {"stop_reason": stop_reason(response.finish_reason), "stop_sequence": None}
                yield _event("message_delta", {"delta": delta, "usage": _usage(response)})
                yield _event("message_stop", {})
                return
            else:
                yield error_event(f"model '{event.model}': {event.message}")
                return
        yield error_event("stream ended unexpectedly")
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class _Blocks:
    """Content blocks of a streamed message: one text block or tool call open at a time."""

    def __init__(self) -> None:
        self.index = -1
        self.open: tuple[str, int] | None = None  # ("text", 0) or ("tool", call index)

    def _start(self, key: tuple[str, int], block: dict[str, Any]) -> list[str]:
        lines = self.close()
        self.index += 1
        self.open = key
        return [
            *lines,
            _event("content_block_start", {"index": self.index, "content_block": block}),
        ]

    def _delta(self, delta: dict[str, Any]) -> str:
        return _event("content_block_delta", {"index": self.index, "delta": delta})

    def add(self, event: TextDelta | ToolCallDelta) -> list[str]:
        if event.choice != 0:
            return []
        lines: list[str] = []
        if isinstance(event, TextDelta):
            if not event.text:
                return []
            if self.open != ("text", 0):
                lines += self._start(("text", 0), {"type": "text", "text": ""})
            return [*lines, self._delta({"type": "text_delta", "text": event.text})]
        if self.open != ("tool", event.index):
            block = {"type": "tool_use", "id": event.id or f"toolu_{uuid.uuid4().hex[:24]}",
                     "name": event.name or "", "input": {}}  # fmt: skip
            lines += self._start(("tool", event.index), block)
        if event.arguments:
            lines.append(self._delta({"type": "input_json_delta", "partial_json": event.arguments}))
        return lines

    def close(self) -> list[str]:
        if self.open is None:
            return []
        self.open = None
        return [_event("content_block_stop", {"index": self.index})]
