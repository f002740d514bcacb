"""Canonical request/response types and the provider adapter protocol.

Every provider adapter translates between these types and one wire format::

    ChatRequest ──adapter.complete──▶ Completion          (one upstream answer)
    ChatRequest ──adapter.stream────▶ TextDelta… StreamEnd

The dispatcher turns adapter results into the standardized :class:`ChatResponse`
(cost, latency, attempts) and, when streaming, emits ``TextDelta…`` then ``StreamDone``
or ``StreamError``.  ``finish_reason`` uses the OpenAI vocabulary everywhere:
``stop``, ``length``, ``content_filter``, ``tool_calls`` or ``other``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from intent_router.errors import QueryError

Role = Literal["system", "user", "assistant"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


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
class Message(_JSON):
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest(_JSON):
    """A provider-neutral chat request (text only)."""

    messages: Sequence[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    stop: Sequence[str] = ()
    stream: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not self.messages:
            raise QueryError("a chat request needs at least one message")
        for i, m in enumerate(self.messages):
            if m.role not in ROLES:
                raise QueryError(f"messages[{i}]: role '{m.role}' is not system/user/assistant")
            if not isinstance(m.content, str):
                raise QueryError(f"messages[{i}]: content must be text")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise QueryError("max_tokens must be at least 1")

    def estimated_input_tokens(self) -> int:
        """Cheap token estimate: ~4 characters per token plus 4 tokens per message."""
        return sum(len(m.content) // 4 + 4 for m in self.messages)


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
class Completion:
    """One non-streamed upstream answer, as an adapter parsed it (tokens None if absent)."""

    text: str
    finish_reason: str
    input_tokens: int | None
    output_tokens: int | None
    upstream_model: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of answer text, streamed."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The adapter's last stream event: finish reason and usage when the upstream sent it."""

    finish_reason: str
    input_tokens: int | None
    output_tokens: int | None
    upstream_model: str


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
    """The standardized answer whatever the provider."""

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


AdapterEvent = TextDelta | StreamEnd
DispatchEvent = TextDelta | StreamDone | StreamError


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
