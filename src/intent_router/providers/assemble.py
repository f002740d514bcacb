"""Streams ⇄ whole answers: add deltas up (:class:`Assembler`) and play an answer back.

Adapters feed every delta they yield to an :class:`Assembler` and end their stream with
:meth:`Assembler.end`, so the dispatcher receives the whole answer (all choices, tool
calls with their argument fragments joined, logprobs) without re-assembling it.
:func:`replay` does the inverse for a cached answer: text pieces and one tool-call delta
per call, in the order OpenAI streams them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from intent_router.providers.base import (
    ChatResponse,
    Choice,
    Delta,
    DispatchEvent,
    StreamDone,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    logprobs: list[Mapping[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None


class Assembler:
    """Collects one stream's deltas into the choices of its :class:`StreamEnd`."""

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}

    def _choice(self, index: int) -> _Choice:
        return self._choices.setdefault(index, _Choice())

    def add(self, delta: Delta) -> Delta:
        """Record a delta and hand it back (``yield asm.add(delta)``)."""
        choice = self._choice(delta.choice)
        if isinstance(delta, TextDelta):
            (choice.refusal if delta.refusal else choice.text).append(delta.text)
            choice.logprobs.extend(delta.logprobs)
        else:
            call = choice.calls.setdefault(delta.index, _Call())
            call.id = delta.id or call.id
            call.name = delta.name or call.name
            call.arguments.append(delta.arguments)
        return delta

    def finish(self, reason: str, choice: int = 0) -> None:
        self._choice(choice).finish_reason = reason

    def has_finish(self) -> bool:
        return any(c.finish_reason is not None for c in self._choices.values())

    def has_calls(self, choice: int = 0) -> bool:
        return bool(self._choice(choice).calls)

    def call_count(self, choice: int = 0) -> int:
        """How many tool calls the choice has opened so far (the next call's index)."""
        return len(self._choice(choice).calls)

    def end(
        self,
        *,
        input_tokens: int | None,
        output_tokens: int | None,
        upstream_model: str,
        usage_details: Mapping[str, Any] | None = None,
        default_finish: str = "stop",
    ) -> StreamEnd:
        self._choice(0)  # a stream that said nothing is one empty choice
        choices = tuple(
            Choice(
                index=index,
                text="".join(c.text),
                tool_calls=tuple(
                    ToolCall(call.id, call.name, "".join(call.arguments))
                    for _, call in sorted(c.calls.items())
                ),
                finish_reason=c.finish_reason or default_finish,
                logprobs={"content": list(c.logprobs)} if c.logprobs else None,
                refusal="".join(c.refusal) if c.refusal else None,
            )
            for index, c in sorted(self._choices.items())
        )
        return StreamEnd(choices, input_tokens, output_tokens, upstream_model, usage_details)


async def replay(response: ChatResponse, chunk_chars: int = 64) -> AsyncIterator[DispatchEvent]:
    """A whole answer as a stream: per choice, text pieces then its tool calls; then done."""
    for choice in response.choices:
        text = choice.text
        for start in range(0, len(text), chunk_chars):
            piece = TextDelta(text[start : start + chunk_chars], choice.index)
            if start == 0 and choice.logprobs:
                piece = TextDelta(piece.text, choice.index, tuple(choice.logprobs["content"]))
            yield piece
        if choice.refusal:
            yield TextDelta(choice.refusal, choice.index, refusal=True)
        for i, call in enumerate(choice.tool_calls):
            yield ToolCallDelta(i, call.id, call.name, call.arguments, choice.index)
    yield StreamDone(response)
