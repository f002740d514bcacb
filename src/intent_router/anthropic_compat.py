"""Our Anthropic-compatible ``/v1/messages``, inbound: body → :class:`ChatRequest`.

Pure (no FastAPI); mirrors :mod:`intent_router.openai_compat`:

* :class:`MessagesRequest` — the inbound Messages body (unknown top-level fields are kept
  and passed on as extras; unknown content block types are refused, naming the block);
* :func:`to_canonical` — body → :class:`ChatRequest`.

The outbound half (``message`` bodies and stream events) is :mod:`.anthropic_render`.

Translation (the rest is one-to-one):

* ``system`` (a string or text blocks) → one system message;
* ``tool_use`` blocks → the assistant turn's tool calls (``input`` as JSON arguments);
* ``tool_result`` blocks → ``tool`` messages, before the rest of the user turn;
  ``is_error: true`` prefixes the result text with ``Error:``;
* images (``base64`` or ``url`` sources) → image parts (data URLs for base64);
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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from intent_router.providers.base import (
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from intent_router.providers.tools import ToolMode
from intent_router.wire_schema import BASE64, HAS_USER_TEXT

_EMPTY: tuple[Any, ...] = (None, "", [], {})
_TOOL_MODES: dict[str, ToolMode] = {"auto": "auto", "any": "required", "none": "none"}


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
