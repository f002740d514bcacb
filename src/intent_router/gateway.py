"""Answer chat requests: route once → dispatch along the chain → one log line. No HTTP here.

The routing text is the last user message; the rest of the conversation travels to the
model unchanged. A pinned model (OpenAI ``model`` other than ``auto``) bypasses routing but
keeps retries and failover: its chain is the pinned model, then the default chain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from intent_router.cache import (
    CacheDefaults,
    CacheHit,
    CachePolicy,
    CacheScope,
    Directives,
    ResponseCache,
    resolve_policy,
    skip_reason,
)
from intent_router.dispatch import Dispatcher
from intent_router.errors import ChainExhaustedError, ConfigError, QueryError, RouteFileError
from intent_router.models import ModelsConfig
from intent_router.providers import (
    ChatRequest,
    ChatResponse,
    DispatchEvent,
    StreamDone,
    StreamError,
    TextDelta,
)
from intent_router.routing.matcher import Decision
from intent_router.service import RouterService

log = logging.getLogger(__name__)
request_log = logging.getLogger("intent_router.requests")

AUTO = "auto"
NO_DIRECTIVES = Directives()
CACHED_FIELDS = ("text", "finish_reason", "input_tokens", "output_tokens", "model",
                 "upstream_model", "provider")  # fmt: skip


@dataclass(frozen=True)
class CacheInfo:
    """How a response relates to the cache: ``hit`` is exact/semantic/stale or None."""

    hit: str | None
    similarity: float | None = None
    age_s: float | None = None
    stored: bool = False
    skipped: str | None = None  # why the cache was not consulted or not written

    def to_dict(self) -> dict[str, Any]:
        return {
            "hit": self.hit,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "stored": self.stored,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Answer:
    plan: Plan
    response: ChatResponse
    cache: CacheInfo


@dataclass(frozen=True)
class CacheContext:
    scope: CacheScope
    policy: CachePolicy
    directives: Directives
    temperature: float | None


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
        self.cache = cache
        self.answered_total: dict[tuple[str, str], int] = {}
        matcher = router.matcher
        config = [matcher.names, matcher.thresholds.tolist(), matcher.chains, models.default_chain]
        config.append(router.index.manifest["routes_fingerprint"])
        defaults = cache.defaults if cache is not None else CacheDefaults()
        self.policies: dict[str, CachePolicy] = {"none": defaults.policy}
        for route in router.routes.routes:
            try:
                self.policies[route.name] = resolve_policy(route.cache, defaults)
            except ConfigError as exc:
                raise RouteFileError(
                    exc.message, path=router.routes.sources.get(route.name), field=exc.field
                ) from exc
        config.append({name: p.model_dump() for name, p in sorted(self.policies.items())})
        blob = json.dumps(config, sort_keys=True, default=str).encode()
        self.routing_fingerprint = hashlib.sha256(blob).hexdigest()[:16]

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
            vector = (await self.router.route(text)).vector if self.cache else np.zeros(0)
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

    def _scope(
        self,
        request: ChatRequest,
        *,
        route: str,
        chain: list[str],
        pinned: str | None,
        extra_scope: dict[str, Any] | None,
    ) -> CacheScope:
        users = [i for i, m in enumerate(request.messages) if m.role == "user"]
        last_user = users[-1] if users else -1
        system = "\n".join(m.content for m in request.messages if m.role == "system")
        history = [
            {"role": m.role, "content": m.content}
            for i, m in enumerate(request.messages)
            if m.role != "system" and i != last_user
        ]
        extra = dict(extra_scope or {})
        return CacheScope.of(
            route=route,
            chain=chain,
            model=pinned,
            system=system or None,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            stop=list(request.stop),
            history=history,
            tools=extra.pop("tools", None),
            tool_choice=extra.pop("tool_choice", None),
            response_format=extra.pop("response_format", None),
            extra=extra or None,
        )

    def _early_scope(
        self, request: ChatRequest, model: str | None, extra_scope: dict[str, Any] | None
    ) -> CacheScope | None:
        """The scope known before routing: the request plus the routing configuration.

        Routing is deterministic for a given index, thresholds, chains and policies (all in
        ``routing_fingerprint``), so an exact repeat can be answered before it is embedded.
        """
        if self.cache is None:
            return None
        extra = {**(extra_scope or {}), "routing": self.routing_fingerprint}
        return self._scope(
            request, route=AUTO, chain=[], pinned=early_pinned(model), extra_scope=extra
        )

    def _cache_context(
        self,
        plan: Plan,
        request: ChatRequest,
        directives: Directives,
        extra_scope: dict[str, Any] | None,
        early: CacheScope | None,
    ) -> CacheContext | None:
        if self.cache is None or early is None:
            return None
        route = plan.route or "none"
        scope = self._scope(
            request, route=route, chain=plan.chain, pinned=plan.pinned, extra_scope=extra_scope
        )
        scope = dataclasses.replace(scope, exact=early.digest)
        policy = self.policies.get(route, self.policies["none"])
        return CacheContext(scope, policy, directives, request.temperature)

    async def _early_hit(
        self,
        request: ChatRequest,
        model: str | None,
        directives: Directives,
        extra_scope: dict[str, Any] | None,
        started: float,
    ) -> tuple[CacheScope | None, Answer | None]:
        early = self._early_scope(request, model, extra_scope)
        if early is None or self.cache is None or not directives.may_serve:
            return early, None
        text = routing_text(request)
        hit = await self.cache.lookup_exact(early, text)
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

    async def _lookup(
        self, ctx: CacheContext | None, plan: Plan, *, relaxed: bool = False
    ) -> CacheHit | None:
        if self.cache is None or ctx is None or not ctx.directives.may_serve:
            return None
        return await self.cache.lookup(
            ctx.scope, plan.text, plan.vector, ctx.policy, relaxed=relaxed
        )

    async def _store(
        self, ctx: CacheContext | None, plan: Plan, response: ChatResponse, *, complete: bool = True
    ) -> CacheInfo:
        if self.cache is None or ctx is None:
            return CacheInfo(hit=None, skipped="cache off")
        reason = skip_reason(
            policy=ctx.policy,
            defaults=self.cache.defaults,
            directives=ctx.directives,
            temperature=ctx.temperature,
            finish_reason=response.finish_reason,
            complete=complete,
        )
        if reason is not None:
            return CacheInfo(hit=None, skipped=reason)
        payload: dict[str, Any] = {name: getattr(response, name) for name in CACHED_FIELDS}
        payload.update(route=plan.route, chain=plan.chain)
        stored = await self.cache.store(ctx.scope, plan.text, plan.vector, payload, ctx.policy)
        return CacheInfo(hit=None, stored=stored)

    async def _stale(self, ctx: CacheContext | None, plan: Plan) -> CacheHit | None:
        """Stale-if-error: the closest answer under the relaxed threshold, if the route opts in."""
        if ctx is None or not ctx.policy.stale_if_error:
            return None
        return await self._lookup(ctx, plan, relaxed=True)

    @staticmethod
    def _from_cache(hit: CacheHit, plan: Plan, started: float, kind: str | None = None) -> Answer:
        fields = {name: hit.payload[name] for name in CACHED_FIELDS}
        response = ChatResponse(
            **fields,
            route=plan.route,
            cost_usd=0.0,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            attempts=(),
        )
        info = CacheInfo(hit=kind or hit.kind, similarity=hit.similarity, age_s=hit.age_s)
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
        early, answer = await self._early_hit(request, model, directives, extra_scope, started)
        if answer is not None:
            self._log(endpoint, answer.plan, answer.response, started, cache=answer.cache)
            return answer
        plan = await self.plan(request, model)
        ctx = self._cache_context(plan, request, directives, extra_scope, early)
        hit = await self._lookup(ctx, plan)
        if hit is not None:
            answer = self._from_cache(hit, plan, started)
            self._log(endpoint, plan, answer.response, started, cache=answer.cache)
            return answer
        try:
            response = await self.dispatcher.complete(request, plan.chain, route=plan.route)
        except ChainExhaustedError as exc:
            stale = await self._stale(ctx, plan)
            if stale is not None:
                answer = self._from_cache(stale, plan, started, kind="stale")
                self._log(endpoint, plan, answer.response, started, cache=answer.cache, error=exc)
                return answer
            self._log(endpoint, plan, None, started, error=exc)
            raise
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
        early, answer = await self._early_hit(request, model, directives, extra_scope, started)
        if answer is None:
            plan = await self.plan(request, model)
            ctx = self._cache_context(plan, request, directives, extra_scope, early)
            hit = await self._lookup(ctx, plan)
            answer = self._from_cache(hit, plan, started) if hit is not None else None
        if answer is not None:
            self._log(endpoint, answer.plan, answer.response, started, cache=answer.cache)
            return answer.plan, answer.cache, _replay(answer.response)
        events = aiter(self.dispatcher.stream(request, plan.chain, route=plan.route))
        try:
            first = await anext(events)
        except ChainExhaustedError as exc:
            stale = await self._stale(ctx, plan)
            if stale is None:
                self._log(endpoint, plan, None, started, error=exc)
                raise
            answer = self._from_cache(stale, plan, started, kind="stale")
            self._log(endpoint, plan, answer.response, started, cache=answer.cache, error=exc)
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
