"""Canonical request/response types and the provider adapter protocol.

Every provider adapter translates between these types and one wire format::

    ChatRequest ──adapter.complete──▶ Completion                    (one upstream answer)
    ChatRequest ──adapter.stream────▶ (TextDelta | ToolCallDelta)… StreamEnd

The request carries everything a Chat Completions body can say (:class:`ChatRequest`;
messages in :mod:`.messages`, tools and output format in :mod:`.tools`); fields with no
canonical slot travel in ``extra``. An adapter that cannot honour a field raises
:class:`~intent_router.errors.UnsupportedFieldError` naming the field and the model.

An answer is one or more :class:`Choice` (``n``), each with text, tool calls, a finish
reason and optional logprobs (OpenAI shape). A stream ends with :class:`StreamEnd`, the
whole answer its deltas add up to (adapters build it with
:class:`~intent_router.providers.assemble.Assembler`). The dispatcher turns adapter
results into the standardized :class:`ChatResponse` (cost, latency, attempts) and, when
streaming, emits the deltas then ``StreamDone`` or ``StreamError``. ``finish_reason``
uses the OpenAI vocabulary everywhere: ``stop``, ``length``, ``content_filter``,
``tool_calls`` or ``other``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from intent_router.errors import QueryError
from intent_router.providers.messages import (
    ROLES,
    SYSTEM_ROLES,
    ContentPart,
    ImagePart,
    Message,
    Role,
    TextPart,
    ToolCall,
)
from intent_router.providers.tools import ResponseFormat, Tool, ToolChoice


class _JSON:
    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (enums as strings, tuples as lists)."""
        return _plain(dataclasses.asdict(self))  # type: ignore[call-overload, no-any-return]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    return value


@dataclass(frozen=True, slots=True)
class ChatRequest(_JSON):
    """A provider-neutral chat request: the whole Chat Completions body.

    ``max_tokens`` holds ``max_tokens`` or ``max_completion_tokens``; ``max_tokens_field``
    remembers which name the client used, so OpenAI receives the same one. ``extra`` holds
    fields with no slot here, passed verbatim to OpenAI-compatible upstreams (vLLM's
    ``top_k``, ``repetition_penalty`` …) and refused by the others.
    """

    messages: Sequence[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    stop: Sequence[str] = ()
    stream: bool = False
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    top_p: float | None = None
    n: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: Sequence[Tool] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    metadata: Mapping[str, str] | None = None
    reasoning_effort: str | None = None
    stream_options: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "tools", tuple(self.tools))
        if not self.messages:
            raise QueryError("a chat request needs at least one message")
        called: set[str] = set()
        for i, m in enumerate(self.messages):
            m.validate(f"messages[{i}]")
            called.update(c.id for c in m.tool_calls)
            if m.role == "tool" and m.tool_call_id not in called:
                raise QueryError(
                    f"messages[{i}].tool_call_id: '{m.tool_call_id}' answers no earlier "
                    "assistant tool call"
                )
        if self.max_tokens is not None and self.max_tokens < 1:
            raise QueryError(f"{self.max_tokens_field} must be at least 1")
        if self.n is not None and self.n < 1:
            raise QueryError("n must be at least 1")
        choice = self.tool_choice
        names = {t.name for t in self.tools}
        if choice is not None and choice.mode == "function" and choice.name not in names:
            raise QueryError(f"tool_choice names '{choice.name}', not in tools")
        if choice is not None and choice.mode == "required" and not names:
            raise QueryError("tool_choice: 'required' needs tools")

    def estimated_input_tokens(self) -> int:
        """Cheap token estimate: ~4 characters per token plus 4 tokens per message;
        images at a flat price (their base64 does not count), tool schemas by length."""
        tools = sum(len(t.name) + len(json.dumps(t.schema())) for t in self.tools) // 4
        return sum(m.estimated_tokens() for m in self.messages) + tools

    def asked_index(self) -> int | None:
        """The question: the last user message with text (what routing and the exact
        cache key read); None when no user message has text."""
        for i in range(len(self.messages) - 1, -1, -1):
            message = self.messages[i]
            if message.role == "user" and message.text().strip():
                return i
        return None

    def answer_fields(self) -> dict[str, Any]:
        """Every parameter that may change the answer, other than the messages.

        JSON-like values, defaults left out. ``stream``, ``stream_options``, ``user`` and
        ``metadata`` are not here: they change how the answer travels or is tracked, not
        what it says. The cache scope is built from this and the messages.
        """
        skip = {"messages", "stream", "stream_options", "user", "metadata", "extra",
                "max_tokens_field"}  # fmt: skip
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in skip or value is None or value == () or value == f.default:
                continue
            is_obj = dataclasses.is_dataclass(value) and not isinstance(value, type)
            out[f.name] = _plain(dataclasses.asdict(value) if is_obj else value)
        if self.tools:
            out["tools"] = [dataclasses.asdict(t) for t in self.tools]
        if self.extra:
            out["extra"] = dict(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how one attempt calls one upstream model.

    ``name`` is our model name, ``model`` the upstream id; ``api_key`` never shows in repr.
    """

    name: str
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Choice(_JSON):
    """One answer of ``n``: text and/or tool calls, why it ended, and logprobs if asked.

    ``logprobs`` is in OpenAI's shape (``{"content": [{"token", "logprob", "bytes",
    "top_logprobs"}, …]}``); ``refusal`` is OpenAI's refusal message, when it gave one.
    """

    index: int = 0
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    logprobs: Mapping[str, Any] | None = None
    refusal: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choice:
        """The inverse of :meth:`to_dict` (used to read cached answers back)."""
        calls = tuple(ToolCall(**c) for c in data.get("tool_calls") or ())
        return cls(
            index=int(data.get("index", 0)),
            text=str(data.get("text", "")),
            tool_calls=calls,
            finish_reason=str(data.get("finish_reason", "stop")),
            logprobs=data.get("logprobs"),
            refusal=data.get("refusal"),
        )

    def output_chars(self) -> int:
        return len(self.text) + sum(len(c.name) + len(c.arguments) for c in self.tool_calls)


@dataclass(frozen=True, slots=True)
class Completion:
    """One non-streamed upstream answer, as an adapter parsed it (tokens None if absent).

    ``usage_details`` holds OpenAI-shaped ``prompt_tokens_details`` /
    ``completion_tokens_details`` when the upstream reported them.
    """

    choices: tuple[Choice, ...]
    input_tokens: int | None
    output_tokens: int | None
    upstream_model: str
    usage_details: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ValueError("a completion has at least one choice")

    @property
    def text(self) -> str:
        return self.choices[0].text

    @property
    def finish_reason(self) -> str:
        return self.choices[0].finish_reason


@dataclass(frozen=True, slots=True)
class StreamEnd(Completion):
    """The adapter's last stream event: the whole answer its deltas added up to."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of answer text, streamed; ``logprobs`` are its tokens' entries (OpenAI shape).

    ``refusal`` marks a piece of OpenAI's refusal message rather than of the content.
    """

    text: str
    choice: int = 0
    logprobs: tuple[Mapping[str, Any], ...] = ()
    refusal: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call, as OpenAI streams them.

    ``index`` is the call's position in its choice; the first piece of a call carries
    ``id`` and ``name``, later pieces only ``arguments`` fragments.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    choice: int = 0


class Outcome(StrEnum):
    OK = "ok"
    RETRIED = "retried"  # failed, the same model was tried again
    FAILED = "failed"  # failed, the chain moved on
    SKIPPED = "skipped"  # not called: breaker open, context too small, deadline spent


@dataclass(frozen=True, slots=True)
class Attempt(_JSON):
    model: str
    provider: str
    outcome: Outcome
    status: int | None = None
    reason: str = ""
    latency_ms: float = 0.0
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class ChatResponse(_JSON):
    """The standardized answer whatever the provider.

    ``text`` and ``finish_reason`` are those of the first choice (what ``/complete``
    shows); ``choices`` is the whole answer.
    """

    text: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    model: str
    upstream_model: str
    provider: str
    route: str | None
    cost_usd: float
    latency_ms: float
    attempts: tuple[Attempt, ...]
    usage_estimated: bool = False  # True when the upstream sent no usage (chars/4 estimate)
    choices: tuple[Choice, ...] = ()  # the whole answer; () means one choice of text
    usage_details: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        choices = tuple(self.choices) or (Choice(0, self.text, (), self.finish_reason),)
        object.__setattr__(self, "choices", choices)


@dataclass(frozen=True, slots=True)
class StreamDone:
    """Last event of a successful dispatched stream."""

    response: ChatResponse


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream broke after text was sent; the client must be told visibly."""

    message: str
    model: str
    status: int | None
    attempts: tuple[Attempt, ...]


Delta = TextDelta | ToolCallDelta
AdapterEvent = TextDelta | ToolCallDelta | StreamEnd
DispatchEvent = TextDelta | ToolCallDelta | StreamDone | StreamError


class ProviderAdapter(Protocol):
    """Translate canonical ⇄ one wire format over an injected ``httpx.AsyncClient``.

    Every failure leaves as :class:`~intent_router.errors.UpstreamError` with ``retryable``
    set; a stream ends with exactly one :class:`StreamEnd` or raises.
    """

    provider: str

    async def complete(self, endpoint: Endpoint, request: ChatRequest) -> Completion: ...

    def stream(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncGenerator[AdapterEvent, None]: ...


__all__ = [
    "ROLES",
    "SYSTEM_ROLES",
    "AdapterEvent",
    "Attempt",
    "ChatRequest",
    "ChatResponse",
    "Choice",
    "Completion",
    "ContentPart",
    "Delta",
    "DispatchEvent",
    "Endpoint",
    "ImagePart",
    "Message",
    "Outcome",
    "ProviderAdapter",
    "ResponseFormat",
    "Role",
    "StreamDone",
    "StreamEnd",
    "StreamError",
    "TextDelta",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
]
