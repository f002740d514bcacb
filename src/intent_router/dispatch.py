"""Walk a chain of models: checks → breaker → call with retries → next model.

For each model of the chain, in order:

1. **skip** it (attempt ``skipped``) when the request cannot fit its context window
   (estimate: ``len(text) // 4 + 4`` tokens per message, plus ``max_tokens``), when the
   deadline is spent, or when its circuit breaker is open;
2. a missing API-key env var fails the attempt (``failed``) without any call;
3. **call** it; a retryable failure (429, 5xx, timeout, dropped connection) is retried up
   to ``max_retries`` times after a backoff sleep, honouring ``Retry-After``; a
   non-retryable one (4xx, unusable 200) moves on at once.

One deadline bounds the whole request: each attempt gets ``min(timeout_s, remaining)``
and no sleep may reach the deadline. Breakers count every failed call except the
request's own faults (400, 413, 422).

When no model answers, :class:`ChainExhaustedError` carries every attempt and a status:
**503** if the deadline ran out or no model was called at all (all skipped: open
breakers, context windows), else **502** (upstreams were called and failed), and a
``retry_after`` when waiting helps (the longest upstream ``Retry-After``, else the breaker
cool-down when a breaker was open). When every model was skipped because the prompt does
not fit its context window, :class:`ContextLengthExceededError` (a request error) instead.

Streams fail over the same way until the first chunk; after it a failure ends the
stream with a :class:`StreamError` event.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import httpx

from intent_router.errors import ChainExhaustedError, ContextLengthExceededError, UpstreamError
from intent_router.models import ModelsConfig, ModelSpec
from intent_router.providers import make_adapters
from intent_router.providers.base import (
    AdapterEvent,
    Attempt,
    ChatRequest,
    ChatResponse,
    Completion,
    DispatchEvent,
    Endpoint,
    Outcome,
    ProviderAdapter,
    StreamDone,
    StreamEnd,
    StreamError,
)
from intent_router.resilience import (
    Backoff,
    BreakerRegistry,
    BreakerState,
    BreakerStorage,
    ExponentialJitter,
    Listener,
    retry_delay,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
REQUEST_FAULTS = frozenset({400, 413, 422})  # not the endpoint's fault: breaker unaffected
BREAKER_OPEN = "breaker open"
MIN_ATTEMPT_S = 0.01  # below this much time left, the deadline counts as spent
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Run:
    """The state of one dispatched request."""

    request: ChatRequest
    route: str | None
    clock: Callable[[], float]
    started: float
    deadline: float
    attempts: list[Attempt] = field(default_factory=list)
    deadline_hit: bool = False
    context_skips: int = 0

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def ms_since(self, t0: float) -> float:
        return round((self.clock() - t0) * 1000, 3)

    def spent(self) -> bool:
        """Too little time left to start another attempt."""
        return self.remaining() < MIN_ATTEMPT_S

    def add(
        self,
        name: str,
        spec: ModelSpec | None,
        outcome: Outcome,
        *,
        status: int | None = None,
        reason: str = "",
        latency_ms: float = 0.0,
        retry_after: float | None = None,
    ) -> None:
        provider = spec.provider if spec is not None else "unknown"
        self.attempts.append(
            Attempt(name, provider, outcome, status, reason, latency_ms, retry_after)
        )
        route = self.route or "-"
        log.debug("dispatch %s: %s %s status=%s %s", route, name, outcome.value, status, reason)


class Dispatcher:
    """Send canonical requests along chains of models with failover, retries, breakers."""

    def __init__(
        self,
        models: ModelsConfig,
        client: httpx.AsyncClient,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        breaker_storage: BreakerStorage | None = None,
        breaker_listeners: Sequence[Listener] = (),
    ) -> None:
        self.models = models
        self._adapters: dict[str, ProviderAdapter] = make_adapters(client)
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff if backoff is not None else ExponentialJitter(rng=rng)
        self.breakers = BreakerRegistry(
            failure_threshold=models.breaker.failure_threshold,
            cooldown_s=models.breaker.cooldown_s,
            clock=clock,
            storage=breaker_storage,
            listeners=breaker_listeners,
        )

    def breaker_states(self) -> dict[str, str]:
        """State of every model's breaker: ``closed``, ``open`` or ``half_open``."""
        return {name: self.breakers.get(name).state.value for name in sorted(self.models.models)}

    async def complete(
        self,
        request: ChatRequest,
        chain: Sequence[str],
        *,
        route: str | None = None,
        deadline_s: float | None = None,
    ) -> ChatResponse:
        run = self._start(request, route, deadline_s)
        for name in chain:
            admitted = self._admit(run, name)
            if admitted is None:
                continue
            spec, key = admitted
            adapter = self._adapters[spec.provider]
            done = await self._try_model(
                run, name, spec, key, partial(adapter.complete, request=request)
            )
            if done is not None:
                completion, t0 = done
                return self._finish(run, name, spec, completion, t0)
        raise self._exhausted(run, chain)

    async def stream(
        self,
        request: ChatRequest,
        chain: Sequence[str],
        *,
        route: str | None = None,
        deadline_s: float | None = None,
        on_open: Callable[[str], None] | None = None,
    ) -> AsyncIterator[DispatchEvent]:
        """Yield TextDelta…, then StreamDone or StreamError.

        Raises ChainExhaustedError from the first ``anext()`` if no model starts, so the
        caller can still answer with a plain HTTP error. ``on_open(model)`` is called once
        the stream of the model that will answer has opened, before its first event.
        """
        run = self._start(request, route, deadline_s)
        for name in chain:
            admitted = self._admit(run, name)
            if admitted is None:
                continue
            spec, key = admitted
            adapter = self._adapters[spec.provider]
            opened = await self._try_model(
                run, name, spec, key, partial(_open_stream, adapter, request=request)
            )
            if opened is None:
                continue
            (events, event), t0 = opened
            if on_open is not None:
                on_open(name)
            async with aclosing(events):
                try:
                    while not isinstance(event, StreamEnd):
                        yield event
                        event = await _next_event(events, run, name)
                except UpstreamError as err:
                    self._failed(run, name, spec, err, t0, after_first_chunk=True)
                    yield StreamError(str(err), name, err.status, tuple(run.attempts))
                    return
            yield StreamDone(self._finish(run, name, spec, event, t0))
            return
        raise self._exhausted(run, chain)

    # -- the chain walk ---------------------------------------------------------------

    def _start(self, request: ChatRequest, route: str | None, deadline_s: float | None) -> _Run:
        now = self._clock()
        budget = deadline_s if deadline_s is not None else self.models.deadline_s
        return _Run(request, route, self._clock, now, now + budget)

    def _admit(self, run: _Run, name: str) -> tuple[ModelSpec, str | None] | None:
        spec = self.models.models.get(name)
        if spec is None:
            run.add(name, None, Outcome.FAILED, reason="unknown model")
            return None
        needed = run.request.estimated_input_tokens() + (run.request.max_tokens or 0)
        if needed > spec.context_window:
            reason = f"context window {spec.context_window} < ~{needed} tokens needed"
            run.add(name, spec, Outcome.SKIPPED, reason=reason)
            run.context_skips += 1
            return None
        if run.spent():
            run.deadline_hit = True
            run.add(name, spec, Outcome.SKIPPED, reason="deadline exceeded")
            return None
        try:
            return spec, spec.api_key(name)
        except UpstreamError as err:
            run.add(name, spec, Outcome.FAILED, reason=str(err))
            return None

    async def _try_model(
        self,
        run: _Run,
        name: str,
        spec: ModelSpec,
        key: str | None,
        call: Callable[[Endpoint], Awaitable[T]],
    ) -> tuple[T, float] | None:
        """Call one model with retries; return (result, start time) or None to move on."""
        breaker = self.breakers.get(name)
        for retry in range(spec.max_retries + 1):
            if retry and run.spent():
                run.deadline_hit = True
                return None
            if not breaker.allow():
                run.add(name, spec, Outcome.SKIPPED, reason=BREAKER_OPEN)
                return None
            budget = max(0.001, min(spec.timeout_s, run.remaining()))
            endpoint = Endpoint(name, spec.base_url, spec.model, key, budget)
            t0 = self._clock()
            try:
                async with asyncio.timeout(budget):
                    result = await call(endpoint)
            except TimeoutError:
                err = UpstreamError(f"timed out after {budget:.3f}s", model=name, retryable=True)
            except UpstreamError as exc:
                err = exc
            except BaseException:
                breaker.release()  # cancelled or a bug: no verdict on the endpoint
                raise
            else:
                breaker.record_success()
                return result, t0
            delay = self._failed(run, name, spec, err, t0, retries_left=spec.max_retries - retry)
            if delay is None:
                return None
            await self._sleep(delay)
        return None

    def _failed(
        self,
        run: _Run,
        name: str,
        spec: ModelSpec,
        err: UpstreamError,
        t0: float,
        *,
        retries_left: int = 0,
        after_first_chunk: bool = False,
    ) -> float | None:
        """Record a failed attempt; return the sleep before a retry, or None to move on."""
        breaker = self.breakers.get(name)
        if err.status not in REQUEST_FAULTS:
            breaker.record_failure()
        else:  # the request's own fault says nothing of the model: free a half-open probe
            breaker.release()
        delay = None
        if err.retryable and retries_left > 0 and breaker.state is BreakerState.CLOSED:
            delay = retry_delay(
                self._backoff,
                spec.max_retries - retries_left + 1,
                retry_after=err.retry_after,
                remaining_s=run.remaining(),
            )
        if run.spent():
            run.deadline_hit = True
        run.add(
            name,
            spec,
            Outcome.FAILED if delay is None else Outcome.RETRIED,
            status=err.status,
            reason=f"after first chunk: {err}" if after_first_chunk else str(err),
            latency_ms=run.ms_since(t0),
            retry_after=err.retry_after,
        )
        return delay

    def _finish(
        self,
        run: _Run,
        name: str,
        spec: ModelSpec,
        end: Completion,
        t0: float,
    ) -> ChatResponse:
        input_tokens, output_tokens = end.input_tokens, end.output_tokens
        estimated = input_tokens is None or output_tokens is None
        if input_tokens is None:
            input_tokens = run.request.estimated_input_tokens()
        if output_tokens is None:
            output_tokens = (sum(c.output_chars() for c in end.choices) + 3) // 4
        run.add(name, spec, Outcome.OK, status=200, latency_ms=run.ms_since(t0))
        return ChatResponse(
            text=end.text,
            finish_reason=end.finish_reason,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=name,
            upstream_model=end.upstream_model,
            provider=spec.provider,
            route=run.route,
            cost_usd=spec.cost_usd(input_tokens, output_tokens),
            latency_ms=run.ms_since(run.started),
            attempts=tuple(run.attempts),
            usage_estimated=estimated,
            choices=end.choices,
            usage_details=end.usage_details,
        )

    def _exhausted(
        self, run: _Run, chain: Sequence[str]
    ) -> ChainExhaustedError | ContextLengthExceededError:
        names = ", ".join(chain) or "(empty chain)"
        if run.attempts and run.context_skips == len(run.attempts):
            needed = run.request.estimated_input_tokens() + (run.request.max_tokens or 0)
            return ContextLengthExceededError(
                f"the prompt needs ~{needed} tokens (input estimate + max_tokens), more than "
                f"the context window of every model of the chain [{names}]",
                attempts=run.attempts,
            )
        none_called = all(a.outcome is Outcome.SKIPPED for a in run.attempts)
        status = 503 if run.deadline_hit or none_called else 502
        why = "deadline exceeded" if run.deadline_hit else "no model answered"
        if none_called and not run.deadline_hit:
            why = "no model available"
        waits = [a.retry_after for a in run.attempts if a.retry_after is not None]
        if not waits and any(a.reason == BREAKER_OPEN for a in run.attempts):
            waits = [self.models.breaker.cooldown_s]
        return ChainExhaustedError(
            f"{why} for chain [{names}] after {len(run.attempts)} attempts",
            attempts=run.attempts,
            status=status,
            retry_after=max(waits) if waits else None,
        )


async def _open_stream(
    adapter: ProviderAdapter, endpoint: Endpoint, request: ChatRequest
) -> tuple[AsyncGenerator[AdapterEvent, None], AdapterEvent]:
    """Start an adapter stream and wait for its first event (failover happens before it)."""
    events = adapter.stream(endpoint, request)
    try:
        return events, await _first(events, endpoint.name)
    except BaseException:
        await events.aclose()
        raise


async def _first(events: AsyncGenerator[AdapterEvent, None], name: str) -> AdapterEvent:
    try:
        return await anext(events)
    except StopAsyncIteration:
        raise UpstreamError("stream ended without events", model=name, retryable=True) from None


async def _next_event(
    events: AsyncGenerator[AdapterEvent, None], run: _Run, name: str
) -> AdapterEvent:
    """The next adapter event, bounded by the request deadline."""
    remaining = run.remaining()
    try:
        async with asyncio.timeout(max(remaining, 0.0)):
            return await _first(events, name)
    except TimeoutError:
        raise UpstreamError(
            "stream stalled past the deadline", model=name, retryable=True
        ) from None


__all__ = ["Dispatcher"]
