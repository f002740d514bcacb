"""One chat request as it goes through the pipeline: :class:`Exchange`, and its parts.

The exchange is the only thing the stages share. It starts with the call (id, endpoint,
start times), the canonical request, the cache directives, the caller (``principal``, and
``access``: what its key may use, its rate limits, its cache tenant) and
the :class:`~intent_router.pipeline.runtime.Runtime` captured once at the start; each stage
adds its part (the plan, the cache scopes, the response, the error) and the record stage
reads it all into the decision row.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intent_router.access import Principal
from intent_router.access.context import RequestAccess
from intent_router.access.spending import Hold
from intent_router.cache import CacheScope, Directives
from intent_router.errors import QueryError
from intent_router.observability.record import new_request_id
from intent_router.pipeline.runtime import Runtime
from intent_router.providers import ChatRequest, ChatResponse, DispatchEvent
from intent_router.request_cache import CacheContext, CacheInfo
from intent_router.rollout.rollouts import Choice
from intent_router.routing.conversation import ConversationDecision, Turn
from intent_router.routing.matcher import Decision

AUTO = "auto"
NO_VECTOR = np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class Call:
    """Who asked, where, and when: the request's id, its endpoint and start times."""

    request_id: str
    endpoint: str
    started: float  # perf_counter
    at: float  # wall clock

    @classmethod
    def now(cls, request_id: str | None, endpoint: str) -> Call:
        return cls(request_id or new_request_id(), endpoint, time.perf_counter(), time.time())


@dataclass(frozen=True)
class Plan:
    """Where a request goes: its routing decision (None when pinned) and its chain."""

    decision: Decision | None  # None when pinned, or answered before routing (exact hit)
    chain: list[str]
    pinned: str | None
    text: str
    vector: np.ndarray
    route: str | None = None
    conversation: ConversationDecision | None = None  # which turns decided the route
    variant: Choice | None = None  # the route's variant (A/B, canary) this request got

    def to_dict(self) -> dict[str, Any]:
        if self.decision is None:
            return {"route": self.route, "pinned_model": self.pinned, "chain": self.chain}
        turns = self.conversation.to_dict() if self.conversation else {}
        variant = {"variant": self.variant.to_dict()} if self.variant is not None else {}
        return {**self.decision.to_dict(), **turns, **variant, "pinned_model": None,
                "chain": self.chain}  # fmt: skip


@dataclass(frozen=True)
class Answer:
    plan: Plan
    response: ChatResponse
    cache: CacheInfo


@dataclass(frozen=True)
class OpenStream:
    """A stream whose answering model is known: the dispatcher opened it (or a cache hit)."""

    plan: Plan
    cache: CacheInfo
    model: str
    events: AsyncIterator[DispatchEvent]


@dataclass
class Exchange:
    """One request's context, filled stage by stage (see :mod:`intent_router.pipeline`)."""

    call: Call
    request: ChatRequest
    runtime: Runtime  # captured once: a reload never changes it under a running request
    model: str | None = None  # as asked: ``auto``/None routes, a model name pins
    directives: Directives = field(default_factory=Directives)
    access: RequestAccess = field(default_factory=RequestAccess)  # the caller, its permissions
    text: str = ""  # what routes and keys the cache: the last user message (parse)
    plan: Plan = field(init=False)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (model, why) off the chain
    early: CacheScope | None = None  # the exact tier's scope, known before routing
    scope: CacheContext | None = None  # the routed scope (semantic tier, store)
    cache: CacheInfo = field(default_factory=lambda: CacheInfo(hit=None))
    response: ChatResponse | None = None
    error: BaseException | None = None
    stream_error: str | None = None
    hold: Hold | None = None  # the budget reservation, between reserve and settle
    notes: dict[str, Any] = field(default_factory=dict)  # decision-row keys: budget, pii_gate

    def __post_init__(self) -> None:
        self.plan = Plan(decision=None, chain=[], pinned=self.pinned, text="", vector=NO_VECTOR)

    @property
    def principal(self) -> Principal:
        """The caller (``ANONYMOUS`` without keys)."""
        return self.access.principal

    @property
    def pinned(self) -> str | None:
        return self.model if self.model is not None and self.model != AUTO else None

    @property
    def answered(self) -> bool:
        return self.response is not None

    def answer(self) -> Answer:
        if self.response is None:
            raise RuntimeError("the exchange has no response yet")
        return Answer(plan=self.plan, response=self.response, cache=self.cache)


def routing_text(request: ChatRequest) -> str:
    """The last user message with text (its text parts joined with spaces).

    Images and tool payloads do not route; a conversation ending in tool results routes
    on the user text that started the exchange.
    """
    asked = request.asked_index()
    if asked is not None:
        return request.messages[asked].text()
    raise QueryError("the conversation has no user message with text to route")


def conversation_turns(request: ChatRequest) -> list[Turn]:
    return [(message.role, message.text()) for message in request.messages]
