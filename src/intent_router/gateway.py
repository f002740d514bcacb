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

from intent_router.access.context import RequestAccess
from intent_router.cache import CacheHit, CacheScope, Directives, ResponseCache
from intent_router.dispatch import Dispatcher
from intent_router.errors import AccessError, ChainExhaustedError, QueryError, UnknownModelError
from intent_router.models import ModelsConfig
from intent_router.observability.decision_log import DecisionLog
from intent_router.observability.metrics import Metrics
from intent_router.observability.prompt_log import LogPrompts, prompt_for_log
from intent_router.observability.record import RequestRecord, new_request_id
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
class Call:
    """Who asked, where, and when: the request's id, its endpoint, start times, and the
    caller with what access control decided for it."""

    request_id: str
    endpoint: str
    started: float  # perf_counter
    at: float  # wall clock
    access: RequestAccess

    @classmethod
    def now(cls, request_id: str | None, endpoint: str, access: RequestAccess | None) -> Call:
        return cls(request_id or new_request_id(), endpoint, time.perf_counter(), time.time(),
                   access if access is not None else RequestAccess())  # fmt: skip


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


def used_tokens(response: ChatResponse) -> int:
    """The tokens an answer really took (for the TPM correction)."""
    return (response.input_tokens or 0) + (response.output_tokens or 0)


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
        *,
        metrics: Metrics | None = None,
        decision_log: DecisionLog | None = None,
        log_prompts: LogPrompts = "off",
    ) -> None:
        self.router = router
        self.models = models
        self.dispatcher = dispatcher
        self.metrics = metrics if metrics is not None else dispatcher.metrics
        self.decision_log = decision_log
        self.log_prompts = log_prompts
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

    def check_model(self, model: str) -> None:
        """Raise UnknownModelError unless ``model`` is ``auto`` or a configured model."""
        if model != AUTO and model not in self.models.models:
            raise UnknownModelError(model, [AUTO, *sorted(self.models.models)])

    async def plan(
        self, request: ChatRequest, model: str | None = None, access: RequestAccess | None = None
    ) -> Plan:
        access = access if access is not None else RequestAccess()
        if model is not None and model != AUTO:
            self.check_model(model)
            chain = access.allowed([model, *self.models.models[model].fallbacks])
            text = routing_text(request)
            vector = await self.router.embed(text) if self.cache else np.zeros(0)
            return Plan(decision=None, chain=chain, pinned=model, text=text, vector=vector)
        text = routing_text(request)
        routed = await self.router.route_conversation(conversation_turns(request))
        decision = routed.decision
        chain = list(decision.chain) if decision.route else list(self.models.default_chain)
        chain = access.chain(decision.route, chain)  # only the key's models (403: none)
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
        call: Call,
    ) -> tuple[CacheScope | None, Answer | None]:
        """An exact repeat, answered before routing; also the early scope for later steps."""
        if self.cache is None:
            return None, None
        access = call.access
        early = self.cache.early_scope(
            request, early_pinned(model), tenant=access.cache_tenant, models=access.cache_models
        )
        text = routing_text(request)
        hit = await self.cache.lookup_exact(early, text, directives)
        self.metrics.cache_lookups.labels("exact", "miss" if hit is None else "hit").inc()
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
        return early, self._from_cache(hit, plan, call.started)

    def _context(
        self,
        plan: Plan,
        request: ChatRequest,
        directives: Directives,
        early: CacheScope | None,
        tenant: str | None,
    ) -> CacheContext | None:
        if self.cache is None or early is None:
            return None
        # A question and its translation never share an answer (it is in the other language).
        lang = plan.decision.lang if plan.decision is not None else None
        return self.cache.context(
            request, route=plan.route, chain=plan.chain, pinned=plan.pinned,
            directives=directives, early=early, lang=lang, tenant=tenant,
        )  # fmt: skip

    async def _lookup(self, ctx: CacheContext | None, plan: Plan) -> CacheHit | None:
        if self.cache is None or ctx is None:
            return None
        hit = await self.cache.lookup(ctx, plan.text, plan.vector)
        self.metrics.cache_lookups.labels("semantic", "miss" if hit is None else "hit").inc()
        return hit

    async def _stale(self, ctx: CacheContext | None, plan: Plan) -> CacheHit | None:
        if self.cache is None or ctx is None:
            return None
        hit = await self.cache.stale(ctx, plan.text, plan.vector)
        if hit is not None:
            self.metrics.cache_lookups.labels("semantic", "stale").inc()
        return hit

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
        call: Call,
    ) -> tuple[Plan, CacheContext | None, Answer | None]:
        """Everything before dispatch: access (a pinned model the key may not use, rate
        limits), exact hit, routing, semantic hit (logged when served)."""
        pinned = early_pinned(model)
        if pinned is not None:
            call.access.check_model(pinned)
        await call.access.admit(request.estimated_input_tokens(), request.max_tokens)
        early, answer = await self._early_hit(request, model, directives, call)
        if answer is not None:
            await call.access.settle(0)
            self._log(call, answer.plan, answer.response, cache=answer.cache)
            return answer.plan, None, answer
        plan = await self.plan(request, model, call.access)
        ctx = self._context(plan, request, directives, early, call.access.cache_tenant)
        hit = await self._lookup(ctx, plan)
        if hit is None:
            return plan, ctx, None
        answer = self._from_cache(hit, plan, call.started)
        await call.access.settle(0)
        self._log(call, plan, answer.response, cache=answer.cache)
        return plan, ctx, answer

    async def _prepare_or_log(
        self,
        request: ChatRequest,
        model: str | None,
        directives: Directives,
        call: Call,
    ) -> tuple[Plan, CacheContext | None, Answer | None]:
        """``_prepare``; a request refused before dispatch (unknown model, nothing to route
        on, a model or limit of its key) is still recorded, so every request has its row."""
        try:
            return await self._prepare(request, model, directives, call)
        except (UnknownModelError, QueryError, AccessError) as exc:
            pinned = early_pinned(model)
            bare = Plan(decision=None, chain=[], pinned=pinned, text="", vector=np.zeros(0))
            self._log(call, bare, None, error=exc)
            raise

    async def _stale_or_raise(
        self,
        exc: ChainExhaustedError,
        ctx: CacheContext | None,
        plan: Plan,
        call: Call,
    ) -> Answer:
        """Every model failed: a stale answer if the route opts in, else the error."""
        stale = await self._stale(ctx, plan)
        if stale is None:
            self._log(call, plan, None, error=exc)
            raise exc
        answer = self._from_cache(stale, plan, call.started, kind="stale")
        self._log(call, plan, answer.response, cache=answer.cache, error=exc)
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
        request_id: str | None = None,
        access: RequestAccess | None = None,
    ) -> Answer:
        call = Call.now(request_id, endpoint, access)
        plan, ctx, answer = await self._prepare_or_log(request, model, directives, call)
        if answer is not None:
            return answer
        try:
            response = await self.dispatcher.complete(request, plan.chain, route=plan.route)
        except ChainExhaustedError as exc:
            await call.access.settle(0)
            return await self._stale_or_raise(exc, ctx, plan, call)
        except Exception as exc:
            await call.access.settle(0)
            self._log(call, plan, None, error=exc)
            raise
        await call.access.settle(used_tokens(response))
        info = await self._store(ctx, plan, response)
        self._log(call, plan, response, cache=info)
        return Answer(plan=plan, response=response, cache=info)

    async def stream(
        self,
        request: ChatRequest,
        *,
        model: str | None = None,
        endpoint: str = "stream",
        directives: Directives = NO_DIRECTIVES,
        request_id: str | None = None,
        access: RequestAccess | None = None,
    ) -> OpenStream:
        """Plan, then open the stream; ChainExhaustedError surfaces before anything is sent.

        A cache hit is replayed as a stream; a stream that completes is stored, one that
        fails or is cut short is not. The answering model is known when this returns.
        """
        call = Call.now(request_id, endpoint, access)
        plan, ctx, answer = await self._prepare_or_log(request, model, directives, call)
        if answer is not None:
            self._first_token(call, answer.response.model)
            return OpenStream(answer.plan, answer.cache, answer.response.model,
                              replay(answer.response))  # fmt: skip
        opened: list[str] = []
        events = aiter(
            self.dispatcher.stream(request, plan.chain, route=plan.route, on_open=opened.append)
        )
        try:
            first = await anext(events)
        except ChainExhaustedError as exc:
            await call.access.settle(0)
            answer = await self._stale_or_raise(exc, ctx, plan, call)
            self._first_token(call, answer.response.model)
            return OpenStream(plan, answer.cache, answer.response.model, replay(answer.response))
        except Exception as exc:
            await call.access.settle(0)
            self._log(call, plan, None, error=exc)
            raise
        self._first_token(call, opened[0])

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
                await call.access.settle(used_tokens(final) if final is not None else 0)
                self._log(call, plan, final, stream_error=error, cache=info)

        return OpenStream(plan, CacheInfo(hit=None), opened[0], relay())

    def _first_token(self, call: Call, model: str) -> None:
        elapsed = time.perf_counter() - call.started
        self.metrics.ttft.labels(model).observe(elapsed)

    def _log(
        self,
        call: Call,
        plan: Plan,
        response: ChatResponse | None,
        *,
        error: BaseException | None = None,
        stream_error: str | None = None,
        cache: CacheInfo | None = None,
    ) -> None:
        """Record the request: metrics, one log line, one decision-log row, the console."""
        record = self._record(call, plan, response, error, stream_error, cache)
        record.observe(self.metrics)
        if self.decision_log is not None:
            self.decision_log.write(record.row())
        line = record.log_line()
        request_log.info(json.dumps(line, separators=(",", ":")))
        self.traffic.record(event_from_log_line(line, time.time()))

    def _record(
        self,
        call: Call,
        plan: Plan,
        response: ChatResponse | None,
        error: BaseException | None,
        stream_error: str | None,
        cache: CacheInfo | None,
    ) -> RequestRecord:
        record = RequestRecord(
            request_id=call.request_id,
            endpoint=call.endpoint,
            time=call.at,
            route=plan.route,
            pinned=plan.pinned,
            chain=list(plan.chain),
            routing=plan.to_dict() if plan.decision is not None else {},
            cache=cache.hit if cache is not None else None,
            similarity=cache.similarity if cache is not None else None,
            latency_s=time.perf_counter() - call.started,
            prompt=prompt_for_log(plan.text, self.log_prompts),
            key_id=None if call.access.principal.anonymous else call.access.principal.key_id,
            team=call.access.principal.team,
        )
        if response is not None:
            record.model, record.provider = response.model, response.provider
            record.input_tokens, record.output_tokens = (
                response.input_tokens,
                response.output_tokens,
            )
            record.cost_usd = response.cost_usd
            record.attempts = list(response.attempts)
        if error is not None and record.cache == "stale":
            record.stale_because = str(error)
        elif error is not None:
            record.outcome, record.error, record.reason = "error", type(error).__name__, str(error)
        if error is not None and not record.attempts:
            record.attempts = [a for a in getattr(error, "attempts", []) if hasattr(a, "outcome")]
        if stream_error is not None:
            record.outcome, record.reason = "stream_error", stream_error
        return record
