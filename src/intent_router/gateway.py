"""Answer chat requests: route once → dispatch along the chain → one log line. No HTTP here.

The routing text is the last user message; the rest of the conversation travels to the
model unchanged. A pinned model (OpenAI ``model`` other than ``auto``) bypasses routing but
keeps retries and failover: its chain is the pinned model, then the default chain.
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
from intent_router.errors import ChainExhaustedError, QueryError
from intent_router.models import ModelsConfig
from intent_router.providers import (
    ChatRequest,
    ChatResponse,
    DispatchEvent,
    StreamDone,
    StreamError,
    TextDelta,
)
from intent_router.request_cache import CacheContext, CacheInfo, RequestCache, response_from
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
class Plan:
    """Where a request goes: its routing decision (None when pinned) and its chain."""

    decision: Decision | None  # None when pinned, or answered before routing (exact hit)
    chain: list[str]
    pinned: str | None
    text: str
    vector: np.ndarray
    route: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.decision is None:
            return {"route": self.route, "pinned_model": self.pinned, "chain": self.chain}
        return {**self.decision.to_dict(), "pinned_model": None, "chain": self.chain}


def early_pinned(model: str | None) -> str | None:
    return model if model is not None and model != AUTO else None


def routing_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user" and message.content.strip():
            return message.content
    raise QueryError("the conversation has no user message with text to route")


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
        }

    async def plan(self, request: ChatRequest, model: str | None = None) -> Plan:
        if model is not None and model != AUTO:
            if model not in self.models.models:
                known = ", ".join([AUTO, *sorted(self.models.models)])
                raise QueryError(f"unknown model '{model}' (known: {known})")
            chain = [model, *(m for m in self.models.default_chain if m != model)]
            text = routing_text(request)
            vector = await self.router.embed(text) if self.cache else np.zeros(0)
            return Plan(decision=None, chain=chain, pinned=model, text=text, vector=vector)
        text = routing_text(request)
        routed = await self.router.route(text)
        decision = routed.decision
        chain = list(decision.chain) if decision.route else list(self.models.default_chain)
        return Plan(
            decision=decision,
            chain=chain,
            pinned=None,
            text=text,
            vector=routed.vector,
            route=decision.route,
        )

    # -- cache -------------------------------------------------------------------------

    async def _early_hit(
        self,
        request: ChatRequest,
        model: str | None,
        directives: Directives,
        extra_scope: dict[str, Any] | None,
        started: float,
    ) -> tuple[CacheScope | None, Answer | None]:
        """An exact repeat, answered before routing; also the early scope for later steps."""
        if self.cache is None:
            return None, None
        early = self.cache.early_scope(request, early_pinned(model), extra_scope)
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
        extra_scope: dict[str, Any] | None,
        early: CacheScope | None,
    ) -> CacheContext | None:
        if self.cache is None or early is None:
            return None
        # A question and its translation never share an answer (it is in the other language).
        lang = plan.decision.lang if plan.decision is not None else None
        extra = {**(extra_scope or {}), "lang": lang} if lang else extra_scope
        return self.cache.context(
            request, route=plan.route, chain=plan.chain, pinned=plan.pinned,
            directives=directives, extra=extra, early=early,
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
        extra_scope: dict[str, Any] | None,
        started: float,
        endpoint: str,
    ) -> tuple[Plan, CacheContext | None, Answer | None]:
        """Everything before dispatch: exact hit, routing, semantic hit (logged when served)."""
        early, answer = await self._early_hit(request, model, directives, extra_scope, started)
        if answer is not None:
            self._log(endpoint, answer.plan, answer.response, started, cache=answer.cache)
            return answer.plan, None, answer
        plan = await self.plan(request, model)
        ctx = self._context(plan, request, directives, extra_scope, early)
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
        extra_scope: dict[str, Any] | None = None,
    ) -> Answer:
        started = time.perf_counter()
        plan, ctx, answer = await self._prepare(
            request, model, directives, extra_scope, started, endpoint
        )
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
        extra_scope: dict[str, Any] | None = None,
    ) -> tuple[Plan, CacheInfo, AsyncIterator[DispatchEvent]]:
        """Plan, then open the stream; ChainExhaustedError surfaces before anything is sent.

        A cache hit is replayed as a stream; a stream that completes is stored, one that
        fails or is cut short is not.
        """
        started = time.perf_counter()
        plan, ctx, answer = await self._prepare(
            request, model, directives, extra_scope, started, endpoint
        )
        if answer is not None:
            return answer.plan, answer.cache, _replay(answer.response)
        events = aiter(self.dispatcher.stream(request, plan.chain, route=plan.route))
        try:
            first = await anext(events)
        except ChainExhaustedError as exc:
            answer = await self._stale_or_raise(exc, ctx, plan, started, endpoint)
            return plan, answer.cache, _replay(answer.response)
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

        return plan, CacheInfo(hit=None), relay()

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


async def _replay(response: ChatResponse, chunk_chars: int = 64) -> AsyncIterator[DispatchEvent]:
    """A cached answer as a stream: text pieces, then the final event."""
    text = response.text
    for start in range(0, len(text), chunk_chars):
        yield TextDelta(text[start : start + chunk_chars])
    yield StreamDone(response)
