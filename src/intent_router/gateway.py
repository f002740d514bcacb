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

from intent_router.dispatch import Dispatcher
from intent_router.errors import QueryError
from intent_router.models import ModelsConfig
from intent_router.providers import (
    ChatRequest,
    ChatResponse,
    DispatchEvent,
    StreamDone,
    StreamError,
)
from intent_router.routing.matcher import Decision
from intent_router.service import RouterService

log = logging.getLogger(__name__)
request_log = logging.getLogger("intent_router.requests")

AUTO = "auto"


@dataclass(frozen=True)
class Plan:
    """Where a request goes: its routing decision (None when pinned) and its chain."""

    decision: Decision | None
    chain: list[str]
    pinned: str | None

    @property
    def route(self) -> str | None:
        return self.decision.route if self.decision else None

    def to_dict(self) -> dict[str, Any]:
        if self.decision is None:
            return {"route": None, "pinned_model": self.pinned, "chain": self.chain}
        return {**self.decision.to_dict(), "pinned_model": None, "chain": self.chain}


def routing_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user" and message.content.strip():
            return message.content
    raise QueryError("the conversation has no user message with text to route")


class Gateway:
    """Routes and dispatches chat requests; owned by the server's lifespan."""

    def __init__(
        self, router: RouterService, models: ModelsConfig, dispatcher: Dispatcher
    ) -> None:
        self.router = router
        self.models = models
        self.dispatcher = dispatcher
        self.answered_total: dict[tuple[str, str], int] = {}

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
            return Plan(decision=None, chain=chain, pinned=model)
        routed = await self.router.route(routing_text(request))
        decision = routed.decision
        chain = list(decision.chain) if decision.route else list(self.models.default_chain)
        return Plan(decision=decision, chain=chain, pinned=None)

    async def complete(
        self, request: ChatRequest, *, model: str | None = None, endpoint: str = "complete"
    ) -> tuple[Plan, ChatResponse]:
        started = time.perf_counter()
        plan = await self.plan(request, model)
        try:
            response = await self.dispatcher.complete(request, plan.chain, route=plan.route)
        except Exception as exc:
            self._log(endpoint, plan, None, started, error=exc)
            raise
        self._log(endpoint, plan, response, started)
        return plan, response

    async def stream(
        self, request: ChatRequest, *, model: str | None = None, endpoint: str = "stream"
    ) -> tuple[Plan, AsyncIterator[DispatchEvent]]:
        """Plan, then open the stream; ChainExhaustedError surfaces before anything is sent."""
        started = time.perf_counter()
        plan = await self.plan(request, model)
        events = self.dispatcher.stream(request, plan.chain, route=plan.route)
        try:
            first = await anext(aiter(events))
        except Exception as exc:
            self._log(endpoint, plan, None, started, error=exc)
            raise

        async def relay() -> AsyncIterator[DispatchEvent]:
            event: DispatchEvent | None = first
            final: ChatResponse | None = None
            error: str | None = None
            try:
                while event is not None:
                    if isinstance(event, StreamDone):
                        final = event.response
                    elif isinstance(event, StreamError):
                        error = event.message
                    yield event
                    event = await anext(events, None)
            finally:
                await events.aclose()  # type: ignore[attr-defined]
                self._log(endpoint, plan, final, started, stream_error=error)

        return plan, relay()

    def _log(
        self,
        endpoint: str,
        plan: Plan,
        response: ChatResponse | None,
        started: float,
        *,
        error: BaseException | None = None,
        stream_error: str | None = None,
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
        if error is not None:
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
