"""Answer chat requests: route once → dispatch along the chain → one log line. No HTTP here.

Routing reads the conversation (:mod:`intent_router.routing.conversation`): the last user
message, unless it is a follow-up that stays on the route of the earlier ones; the cache
keys on the last user message. The conversation travels to the model unchanged. A pinned
model (``model`` other than ``auto``) bypasses routing: its chain is that model alone (with
its retries), then the ``fallbacks`` the models file gives it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from intent_router.cache import CacheHit, CacheScope, Directives, ResponseCache
from intent_router.dispatch import Dispatcher
from intent_router.errors import ChainExhaustedError, QueryError, UnknownModelError
from intent_router.models import ModelsConfig
from intent_router.observability.traffic import TrafficStats, event_from_log_line
from intent_router.providers import (
    ChatRequest,
    ChatResponse,
    DispatchEvent,
    StreamDone,
    StreamError,
    replay,
)
from intent_router.request_cache import CacheContext, CacheInfo, RequestCache, response_from
from intent_router.routing.conversation import ConversationDecision, Turn
from intent_router.routing.matcher import Decision
from intent_router.service import RouterService

log = logging.getLogger(__name__)
request_log = logging.getLogger("intent_router.requests")

AUTO = "auto"
NO_DIRECTIVES = Directives()


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

    def to_dict(self) -> dict[str, Any]:
        if self.decision is None:
            return {"route": self.route, "pinned_model": self.pinned, "chain": self.chain}
        turns = self.conversation.to_dict() if self.conversation else {}
        return {**self.decision.to_dict(), **turns, "pinned_model": None, "chain": self.chain}


def early_pinned(model: str | None) -> str | None:
    return model if model is not None and model != AUTO else None


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


class Gateway:
    """Routes and dispatches chat requests; owned by the server's lifespan."""

    def __init__(
        self,
        router: RouterService,
        models: ModelsConfig,
        dispatcher: Dispatcher,
        cache: ResponseCache | None = None,
    ) -> None:
        self.router = router
        self.models = models
        self.dispatcher = dispatcher
        self.answered_total: dict[tuple[str, str], int] = {}
        self.traffic = TrafficStats()  # what the console draws; fed by _log
        self.cache = (
            RequestCache(
                cache,
                router.routes,
                router.matcher,
                default_chain=models.default_chain,
                # The encoder is part of every scope: vectors of two encoders never meet.
                index_fingerprint=f"{router.index.manifest['routes_fingerprint']}|{router.encoder.id}",
            )
            if cache is not None
            else None
        )

    def metrics(self) -> dict[str, tuple[str, str, list[tuple[dict[str, str], float]]]]:
        states = self.dispatcher.breaker_states()
        return {
            "intent_router_breaker_open": (
                "gauge",
                "1 when a model's circuit breaker is open or half-open.",
                [({"model": m}, float(s != "closed")) for m, s in sorted(states.items())],
            ),
            "intent_router_answered_total": (
                "counter",
                "Requests answered, by route and answering model.",
                [
                    ({"route": r, "model": m}, float(n))
                    for (r, m), n in sorted(self.answered_total.items())
                ],
            ),
            **self.dispatcher.metrics(),
        }

    def check_model(self, model: str) -> None:
        """Raise UnknownModelError unless ``model`` is ``auto`` or a configured model."""
        if model != AUTO and model not in self.models.models:
            raise UnknownModelError(model, [AUTO, *sorted(self.models.models)])

    async def plan(self, request: ChatRequest, model: str | None = None) -> Plan:
        if model is not None and model != AUTO:
            self.check_model(model)
            chain = [model, *self.models.models[model].fallbacks]
            text = routing_text(request)
            vector = await self.router.embed(text) if self.cache else np.zeros(0)
            return Plan(decision=None, chain=chain, pinned=model, text=text, vector=vector)
        text = routing_text(request)
        routed = await self.router.route_conversation(conversation_turns(request))
        decision = routed.decision
        chain = list(decision.chain) if decision.route else list(self.models.default_chain)
        return Plan(
            decision=decision,
            chain=chain,
            pinned=None,
            text=text,
            vector=routed.vector,
            route=decision.route,
            conversation=routed.conversation,
        )

    # -- cache -------------------------------------------------------------------------

    async def _early_hit(
        self,
        request: ChatRequest,
        model: str | None,
        directives: Directives,
        started: float,
    ) -> tuple[CacheScope | None, Answer | None]:
        """An exact repeat, answered before routing; also the early scope for later steps."""
        if self.cache is None:
            return None, None
        early = self.cache.early_scope(request, early_pinned(model))
        text = routing_text(request)
        hit = await self.cache.lookup_exact(early, text, directives)
        if hit is None:
            return early, None
        plan = Plan(
            decision=None,
            chain=list(hit.payload.get("chain", [])),
            pinned=early_pinned(model),
            text=text,
            vector=np.zeros(0, dtype=np.float32),
            route=hit.payload.get("route"),
        )
        return early, self._from_cache(hit, plan, started)

    def _context(
        self,
        plan: Plan,
        request: ChatRequest,
        directives: Directives,
        early: CacheScope | None,
    ) -> CacheContext | None:
        if self.cache is None or early is None:
            return None
        # A question and its translation never share an answer (it is in the other language).
        lang = plan.decision.lang if plan.decision is not None else None
        return self.cache.context(
            request, route=plan.route, chain=plan.chain, pinned=plan.pinned,
            directives=directives, early=early, lang=lang,
        )  # fmt: skip

    async def _lookup(self, ctx: CacheContext | None, plan: Plan) -> CacheHit | None:
        if self.cache is None or ctx is None:
            return None
        return await self.cache.lookup(ctx, plan.text, plan.vector)

    async def _stale(self, ctx: CacheContext | None, plan: Plan) -> CacheHit | None:
        if self.cache is None or ctx is None:
            return None
        return await self.cache.stale(ctx, plan.text, plan.vector)

    async def _store(
        self, ctx: CacheContext | None, plan: Plan, response: ChatResponse
    ) -> CacheInfo:
        if self.cache is None or ctx is None:
            return CacheInfo(hit=None, skipped="cache off")
        return await self.cache.store(
            ctx, plan.text, plan.vector, response, route=plan.route, chain=plan.chain
        )

    async def _prepare(
        self,
        request: ChatRequest,
        model: str | None,
        directives: Directives,
        started: float,
        endpoint: str,
    ) -> tuple[Plan, CacheContext | None, Answer | None]:
        """Everything before dispatch: exact hit, routing, semantic hit (logged when served)."""
        early, answer = await self._early_hit(request, model, directives, started)
        if answer is not None:
            self._log(endpoint, answer.plan, answer.response, started, cache=answer.cache)
            return answer.plan, None, answer
        plan = await self.plan(request, model)
        ctx = self._context(plan, request, directives, early)
        hit = await self._lookup(ctx, plan)
        if hit is None:
            return plan, ctx, None
        answer = self._from_cache(hit, plan, started)
        self._log(endpoint, plan, answer.response, started, cache=answer.cache)
        return plan, ctx, answer

    async def _stale_or_raise(
        self,
        exc: ChainExhaustedError,
        ctx: CacheContext | None,
        plan: Plan,
        started: float,
        endpoint: str,
    ) -> Answer:
        """Every model failed: a stale answer if the route opts in, else the error."""
        stale = await self._stale(ctx, plan)
        if stale is None:
            self._log(endpoint, plan, None, started, error=exc)
            raise exc
        answer = self._from_cache(stale, plan, started, kind="stale")
        self._log(endpoint, plan, answer.response, started, cache=answer.cache, error=exc)
        return answer

    @staticmethod
    def _from_cache(hit: CacheHit, plan: Plan, started: float, kind: str | None = None) -> Answer:
        response, info = response_from(hit, route=plan.route, started=started, kind=kind)
        return Answer(plan=plan, response=response, cache=info)

    async def complete(
        self,
        request: ChatRequest,
        *,
        model: str | None = None,
        endpoint: str = "complete",
        directives: Directives = NO_DIRECTIVES,
    ) -> Answer:
        started = time.perf_counter()
        plan, ctx, answer = await self._prepare(request, model, directives, started, endpoint)
        if answer is not None:
            return answer
        try:
            response = await self.dispatcher.complete(request, plan.chain, route=plan.route)
        except ChainExhaustedError as exc:
            return await self._stale_or_raise(exc, ctx, plan, started, endpoint)
        except Exception as exc:
            self._log(endpoint, plan, None, started, error=exc)
            raise
        info = await self._store(ctx, plan, response)
        self._log(endpoint, plan, response, started, cache=info)
        return Answer(plan=plan, response=response, cache=info)

    async def stream(
        self,
        request: ChatRequest,
        *,
        model: str | None = None,
        endpoint: str = "stream",
        directives: Directives = NO_DIRECTIVES,
    ) -> OpenStream:
        """Plan, then open the stream; ChainExhaustedError surfaces before anything is sent.

        A cache hit is replayed as a stream; a stream that completes is stored, one that
        fails or is cut short is not. The answering model is known when this returns.
        """
        started = time.perf_counter()
        plan, ctx, answer = await self._prepare(request, model, directives, started, endpoint)
        if answer is not None:
            return OpenStream(answer.plan, answer.cache, answer.response.model,
                              replay(answer.response))  # fmt: skip
        opened: list[str] = []
        events = aiter(
            self.dispatcher.stream(request, plan.chain, route=plan.route, on_open=opened.append)
        )
        try:
            first = await anext(events)
        except ChainExhaustedError as exc:
            answer = await self._stale_or_raise(exc, ctx, plan, started, endpoint)
            return OpenStream(plan, answer.cache, answer.response.model, replay(answer.response))
        except Exception as exc:
            self._log(endpoint, plan, None, started, error=exc)
            raise

        async def relay() -> AsyncIterator[DispatchEvent]:
            event: DispatchEvent | None = first
            final: ChatResponse | None = None
            error: str | None = None
            info = CacheInfo(hit=None)
            try:
                while event is not None:
                    if isinstance(event, StreamDone):
                        final = event.response
                        info = await self._store(ctx, plan, final)
                    elif isinstance(event, StreamError):
                        error = event.message
                    yield event
                    event = await anext(events, None)
            finally:
                await events.aclose()  # type: ignore[attr-defined]
                self._log(endpoint, plan, final, started, stream_error=error, cache=info)

        return OpenStream(plan, CacheInfo(hit=None), opened[0], relay())

    def _log(
        self,
        endpoint: str,
        plan: Plan,
        response: ChatResponse | None,
        started: float,
        *,
        error: BaseException | None = None,
        stream_error: str | None = None,
        cache: CacheInfo | None = None,
    ) -> None:
        """One structured line per request. Prompt text is never logged."""
        line: dict[str, Any] = {
            "event": "request",
            "endpoint": endpoint,
            "route": plan.route,
            "score": round(plan.decision.score, 4) if plan.decision else None,
            "decided_by": plan.conversation.decided_by if plan.conversation else None,
            "pinned_model": plan.pinned,
            "chain": plan.chain,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "cache": cache.hit if cache and cache.hit else "miss",
        }
        if response is not None:
            line.update(
                model=response.model,
                provider=response.provider,
                input_tokens=response.input_tokens,
                output_tokens=response.output_tokens,
                cost_usd=response.cost_usd,
                attempts=[a.to_dict() for a in response.attempts],
                outcome="ok",
            )
            key = (plan.route or "none", response.model)
            self.answered_total[key] = self.answered_total.get(key, 0) + 1
        if error is not None and cache is not None and cache.hit == "stale":
            line["stale_because"] = str(error)
        elif error is not None:
            attempts = getattr(error, "attempts", [])
            line.update(
                outcome="error",
                error=type(error).__name__,
                reason=str(error),
                attempts=[a.to_dict() if hasattr(a, "to_dict") else a for a in attempts],
            )
        if stream_error is not None:
            line.update(outcome="stream_error", reason=stream_error)
        request_log.info(json.dumps(line, separators=(",", ":")))
        self.traffic.record(event_from_log_line(line, time.time()))
