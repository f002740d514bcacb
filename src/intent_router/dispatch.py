"""Walk a chain of models: failover first, then retries, then the panic trickle.

For one request, :class:`Dispatcher` walks the chain in passes:

1. **Each available model once, in chain order.** A model is *skipped* (attempt
   ``skipped``, with the reason) when it is unknown (``failed``), the request cannot fit
   its context window, its key variable is unset, the deadline is spent, it is cooling
   down after a 429, it is at its ``max_in_flight`` cap, or its breaker is open.
2. **Then retries and returns**, earliest first: a model whose failure was retryable
   (429, 5xx, timeout, dropped connection) is tried again after its backoff (or its
   ``Retry-After``), up to its ``max_retries``, while its breaker stays closed and the
   process-wide retry budget allows (else an attempt ``skipped`` says "retry budget
   exhausted"); a model skipped because it was cooling down is called once its
   cool-down ends, if that is within ``rate_limit.max_wait_s`` and the deadline. The
   attempt that was retried turns from ``failed`` into ``retried``.
3. **Panic.** If no model could be called at all (every breaker open, every model cooling
   for too long), a bounded trickle (``panic.rate_per_s`` per model) still goes to the
   least bad of them, its attempt's reason starting with ``panic``.

Failover before retry: under a brown-out of every provider the next model answers at
once instead of after a backoff sleep, and retries (which the budget limits) are only
spent on the requests that every model failed.

**Breakers** get one outcome per request per model: the final result of that model's
attempts in the request (success, or a failure if any attempt failed for the model's
own reasons), so retries do not multiply a request's weight. Not counted: 429s (they
cool the model down instead: back-pressure, not sickness) and the request's own faults
(400, 413, 422). A slow success counts as slow when ``breaker.slow_call_s`` is set.

One deadline bounds the whole request: each attempt gets ``min(timeout_s, remaining)``
and no wait may reach the deadline. When no model answers, :class:`ChainExhaustedError`
carries every attempt and a status: **503** if the deadline ran out or no model was
called at all, else **502**, and a ``retry_after`` when waiting helps (the longest upstream
``Retry-After``, else the breaker cool-down when a breaker was open). When every model was
skipped because the prompt does not fit its context window,
:class:`ContextLengthExceededError` (a request error) instead. Streams fail over the same
way until the first chunk; after it a failure ends the stream with a :class:`StreamError`
event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import httpx

from intent_router.errors import ChainExhaustedError, ContextLengthExceededError, UpstreamError
from intent_router.models import ModelsConfig, ModelSpec
from intent_router.observability.metrics import BREAKER_VALUES, Metrics
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
    BreakerPolicy,
    BreakerRegistry,
    BreakerState,
    BreakerStorage,
    Bulkheads,
    Candidate,
    Cooldowns,
    ExponentialJitter,
    Listener,
    PanicValve,
    RetryBudget,
    least_bad,
    retry_delay,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
REQUEST_FAULTS = frozenset({400, 413, 422})  # not the endpoint's fault: breaker unaffected
MIN_ATTEMPT_S = 0.01  # below this much time left, the deadline counts as spent
MAX_WAITS = 3  # a cooling model whose cool-down keeps being extended is waited for 3 times
PANIC = "panic: every model of the chain is unavailable"
Sleep = Callable[[float], Awaitable[None]]
Call = Callable[[ProviderAdapter, Endpoint], Awaitable[T]]


@dataclass
class _Visit:
    """One model's part in one request."""

    name: str
    spec: ModelSpec
    key: str | None
    calls: int = 0
    probe: bool = False  # holds a half-open permit (or a panic call's forced one)
    ok: bool = False
    duration_s: float = 0.0
    counted_failure: bool = False  # failed for the model's own reasons: a breaker failure
    retryable: bool = False  # the last failure may be retried
    retry_at: float = 0.0  # when the last failure may be retried (backoff or Retry-After)
    attempt_index: int = -1  # the last failed attempt, turned into "retried" on a retry
    cooling: bool = False  # skipped in the first pass because cooling down: call it later
    panic: bool = False  # called by the panic trickle
    waits: int = 0  # times waited for its cool-down to end


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
    calls: int = 0
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


@dataclass
class _Found(Generic[T]):
    """A model that answered: its result (its in-flight slot still held)."""

    result: T
    t0: float
    visit: _Visit


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
        metrics: Metrics | None = None,
    ) -> None:
        self.models = models
        self.metrics = metrics if metrics is not None else Metrics()
        self.metrics.declare_models(sorted(models.models))
        self.metrics.on_scrape(self._refresh_gauges)
        self._adapters: dict[str, ProviderAdapter] = make_adapters(client)
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff if backoff is not None else ExponentialJitter(rng=rng)
        b = models.breaker
        policy = BreakerPolicy(
            failure_rate=b.failure_rate, minimum_calls=b.minimum_calls, window_s=b.window_s,
            cooldown_s=b.cooldown_s, max_cooldown_s=b.max_cooldown_s,
            half_open_probes=b.half_open_probes,
            slow_call_s=b.slow_call_s, slow_call_rate=b.slow_call_rate,
        )  # fmt: skip
        self.breakers = BreakerRegistry(
            policy, clock=clock, storage=breaker_storage, listeners=breaker_listeners
        )
        rl, rb = models.rate_limit, models.retry_budget
        self.cooldowns = Cooldowns(default_s=rl.cooldown_s, max_s=rl.max_cooldown_s, clock=clock)
        self.budget = RetryBudget(
            ratio=rb.ratio, min_per_s=rb.min_per_s, window_s=rb.window_s, clock=clock
        )
        self.panic = PanicValve(
            rate_per_s=models.panic.rate_per_s, burst=models.panic.burst, clock=clock
        )
        self.bulkheads = Bulkheads({n: s.max_in_flight for n, s in models.models.items()})
        missing = models.missing_keys()
        if missing:
            log.warning(
                "models skipped until their key variable is set: %s",
                ", ".join(f"{name} ({env})" for name, env in missing.items()),
            )

    def breaker_states(self) -> dict[str, str]:
        """State of every model's breaker: ``closed``, ``open`` or ``half_open``."""
        return {name: self.breakers.get(name).state.value for name in sorted(self.models.models)}

    def inherit(self, old: Dispatcher) -> None:
        """Continue ``old``'s resilience state when a reload replaces its configuration:
        breakers and cool-downs of the models whose definition did not change, the calls in
        flight, the retry budget and the panic trickle (when their settings did not change)."""
        same = [n for n, spec in self.models.models.items() if old.models.models.get(n) == spec]
        self.breakers.adopt(old.breakers, same)
        self.cooldowns.adopt(old.cooldowns, same)
        self.bulkheads.share_counts(old.bulkheads)
        if self.models.retry_budget == old.models.retry_budget:
            self.budget = old.budget
        if self.models.panic == old.models.panic:
            self.panic = old.panic

    def attach_metrics(self, attached: bool = True) -> None:
        """Report (or stop reporting) this dispatcher's gauges when ``/metrics`` is scraped."""
        if attached:
            self.metrics.on_scrape(self._refresh_gauges)
        else:
            self.metrics.off_scrape(self._refresh_gauges)

    def _refresh_gauges(self, metrics: Metrics) -> None:
        """Breaker states and calls in flight, read when ``/metrics`` is scraped."""
        for name, state in self.breaker_states().items():
            metrics.breaker_state.labels(name).set(BREAKER_VALUES[state])
            metrics.model_in_flight.labels(name).set(self.bulkheads.in_flight(name))

    async def complete(
        self,
        request: ChatRequest,
        chain: Sequence[str],
        *,
        route: str | None = None,
        deadline_s: float | None = None,
    ) -> ChatResponse:
        run = self._start(request, route, deadline_s)

        async def call(adapter: ProviderAdapter, endpoint: Endpoint) -> Completion:
            return await adapter.complete(endpoint, request)

        found = await self._walk(run, chain, call)
        if found is None:
            raise self._exhausted(run, chain)
        visit = found.visit
        self.bulkheads.release(visit.name)
        self._settle(visit)
        return self._finish(run, visit, found.result, found.t0)

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

        async def call(
            adapter: ProviderAdapter, endpoint: Endpoint
        ) -> tuple[AsyncGenerator[AdapterEvent, None], AdapterEvent]:
            return await _open_stream(adapter, endpoint, request)

        found = await self._walk(run, chain, call)
        if found is None:
            raise self._exhausted(run, chain)
        visit, (events, event) = found.visit, found.result
        if on_open is not None:
            on_open(visit.name)
        try:
            async with aclosing(events):
                try:
                    while not isinstance(event, StreamEnd):
                        yield event
                        event = await _next_event(events, run, visit.name)
                except UpstreamError as err:
                    visit.ok = False
                    self._failed(run, visit, err, found.t0, after_first_chunk=True)
                    yield StreamError(str(err), visit.name, err.status, tuple(run.attempts))
                    return
            yield StreamDone(self._finish(run, visit, event, found.t0))
        finally:  # the stream held its slot until here; a client gone away is no verdict
            self.bulkheads.release(visit.name)
            self._settle(visit)

    # -- the chain walk ---------------------------------------------------------------

    def _start(self, request: ChatRequest, route: str | None, deadline_s: float | None) -> _Run:
        now = self._clock()
        budget = deadline_s if deadline_s is not None else self.models.deadline_s
        self.budget.record_request()
        return _Run(request, route, self._clock, now, now + budget)

    async def _walk(self, run: _Run, chain: Sequence[str], call: Call[T]) -> _Found[T] | None:
        """Find a model that answers; every visit but the winner's is settled here."""
        visits: list[_Visit] = []
        found: _Found[T] | None = None
        try:
            for name in chain:
                visit = self._check(run, name)
                if visit is None:
                    continue
                visits.append(visit)
                if self._admit(run, visit):
                    found = await self._call(run, visit, call)
                    if found is not None:
                        return found
            found = await self._second_chances(run, visits, call)
            if found is None and run.calls == 0 and not run.spent():
                found = await self._panic(run, visits, call)
            return found
        finally:
            for visit in visits:
                if found is None or visit is not found.visit:
                    self._settle(visit)

    def _check(self, run: _Run, name: str) -> _Visit | None:
        """The checks that do not depend on load: None (attempt recorded) to skip."""
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
        missing = spec.missing_key_env()
        if missing is not None:
            run.add(name, spec, Outcome.SKIPPED, reason=f"key variable {missing} is not set")
            return None
        if run.spent():
            run.deadline_hit = True
            run.add(name, spec, Outcome.SKIPPED, reason="deadline exceeded")
            return None
        return _Visit(name, spec, spec.api_key(name))

    def _admit(self, run: _Run, visit: _Visit, *, panic: bool = False) -> bool:
        """Cool-down, bulkhead and breaker for a model's first call; False: skipped."""
        name, spec = visit.name, visit.spec
        cooling = self.cooldowns.remaining(name)
        if cooling > 0 and not panic:
            visit.cooling = True
            reason = f"cooling down after 429 ({cooling:.2f}s left)"
            run.add(name, spec, Outcome.SKIPPED, reason=reason)
            return False
        if not self.bulkheads.try_acquire(name):
            self.metrics.model_at_capacity.labels(name).inc()
            visit.cooling = False
            reason = f"at capacity (max_in_flight {spec.max_in_flight})"
            run.add(name, spec, Outcome.SKIPPED, reason=reason)
            return False
        breaker = self.breakers.get(name)
        before = breaker.state
        if panic:
            breaker.force_probe()
        elif not breaker.allow():
            self.bulkheads.release(name)
            visit.cooling = False
            state = "open" if before is BreakerState.OPEN else "half-open, probes in flight"
            run.add(name, spec, Outcome.SKIPPED, reason=f"breaker {state}")
            return False
        visit.probe = before is not BreakerState.CLOSED
        visit.cooling = False
        return True

    async def _call(self, run: _Run, visit: _Visit, call: Call[T]) -> _Found[T] | None:
        """One call to an admitted model (its slot held); the slot is kept on success."""
        spec = visit.spec
        budget = max(0.001, min(spec.timeout_s, run.remaining()))
        endpoint = Endpoint(visit.name, spec.base_url, spec.model, visit.key, budget)
        t0 = self._clock()
        visit.calls += 1
        run.calls += 1
        try:
            async with asyncio.timeout(budget):
                result = await call(self._adapters[spec.provider], endpoint)
        except TimeoutError:
            err = UpstreamError(f"timed out after {budget:.3f}s", model=visit.name, retryable=True)
        except UpstreamError as exc:
            err = exc
        except BaseException:
            self.bulkheads.release(visit.name)  # cancelled or a bug: no verdict
            raise
        else:
            visit.ok, visit.duration_s = True, self._clock() - t0
            self.cooldowns.succeeded(visit.name)
            return _Found(result, t0, visit)
        self.bulkheads.release(visit.name)
        self._failed(run, visit, err, t0)
        return None

    async def _second_chances(
        self, run: _Run, visits: list[_Visit], call: Call[T]
    ) -> _Found[T] | None:
        """Retries of failed models and calls to models that were cooling, earliest first."""
        max_wait = self.models.rate_limit.max_wait_s
        pending = [v for v in visits if v.cooling or self._may_retry(v)]
        while pending and not run.spent():
            now = self._clock()
            ready = {id(v): self._ready_at(v, now) for v in pending}
            limit = run.deadline - MIN_ATTEMPT_S
            pending = [
                v for v in pending
                if ready[id(v)] <= limit
                and (self.cooldowns.until(v.name) <= now or ready[id(v)] - now <= max_wait)
            ]  # fmt: skip
            if not pending:
                break
            visit = min(pending, key=lambda v: ready[id(v)])
            pending.remove(visit)
            retry = visit.calls > 0
            if retry and not self.budget.try_spend():
                self.metrics.retries_skipped.inc()
                run.add(visit.name, visit.spec, Outcome.SKIPPED,
                        reason="retry skipped: retry budget exhausted")  # fmt: skip
                continue
            wait = ready[id(visit)] - self._clock()
            if wait > 0:
                await self._sleep(wait)
            if run.spent():
                run.deadline_hit = True
                break
            if retry:
                if not self._may_retry(visit):
                    continue
                if not self.bulkheads.try_acquire(visit.name):
                    self.metrics.model_at_capacity.labels(visit.name).inc()
                    reason = f"at capacity (max_in_flight {visit.spec.max_in_flight})"
                    run.add(visit.name, visit.spec, Outcome.SKIPPED, reason=reason)
                    continue
                run.attempts[visit.attempt_index] = dataclasses.replace(
                    run.attempts[visit.attempt_index], outcome=Outcome.RETRIED
                )
            elif not self._admit(run, visit):
                visit.waits += 1
                if visit.cooling and visit.waits < MAX_WAITS:
                    pending.append(visit)  # another 429 extended it: wait again if in time
                continue
            found = await self._call(run, visit, call)
            if found is not None:
                return found
            if self._may_retry(visit):
                pending.append(visit)
        return None

    def _may_retry(self, visit: _Visit) -> bool:
        breaker = self.breakers.get(visit.name)
        return (
            visit.retryable
            and visit.calls <= visit.spec.max_retries
            and not visit.probe
            and breaker.state is BreakerState.CLOSED
        )

    def _ready_at(self, visit: _Visit, now: float) -> float:
        """When a pending model may be called: after its cool-down and its backoff."""
        at = max(now, self.cooldowns.until(visit.name))
        return max(at, visit.retry_at) if visit.calls else at

    async def _panic(self, run: _Run, visits: list[_Visit], call: Call[T]) -> _Found[T] | None:
        """Every model unavailable: let a bounded trickle through to the least bad one."""
        by_name = {v.name: v for v in visits if v.calls == 0}
        candidates = [
            Candidate(
                name,
                self.breakers.get(name).failure_rate(),
                max(self.breakers.get(name).available_at(), self.cooldowns.until(name)),
            )
            for name in by_name
            if self.models.models[name].max_in_flight is None
            or self.bulkheads.in_flight(name) < (self.models.models[name].max_in_flight or 0)
        ]
        pick = least_bad(candidates)
        if pick is None or not self.panic.take(pick.name):
            return None
        self.metrics.panic_calls.inc()
        visit = by_name[pick.name]
        if not self._admit(run, visit, panic=True):
            return None
        visit.panic = True
        return await self._call(run, visit, call)

    def _settle(self, visit: _Visit) -> None:
        """Report the visit's one outcome to its breaker (or give its probe permit back)."""
        if visit.calls == 0:
            return
        breaker = self.breakers.get(visit.name)
        if not visit.probe and breaker.state is BreakerState.HALF_OPEN:
            return  # begun before the breaker opened: not one of its probes
        if visit.ok:
            breaker.record_success(visit.duration_s)
        elif visit.counted_failure:
            breaker.record_failure()
        else:
            breaker.release()

    def _failed(
        self,
        run: _Run,
        visit: _Visit,
        err: UpstreamError,
        t0: float,
        *,
        after_first_chunk: bool = False,
    ) -> None:
        """Record a failed attempt and what it means for the model."""
        reason = str(err)
        if err.status == 429:
            seconds = self.cooldowns.cool(visit.name, err.retry_after, started_at=t0)
            self.metrics.rate_limited.inc()
            reason += f"; cooling down {seconds:.2f}s"
        elif err.status not in REQUEST_FAULTS:
            visit.counted_failure = True
        delay = retry_delay(
            self._backoff, visit.calls, retry_after=err.retry_after, remaining_s=run.remaining()
        )  # None: no time left for a retry before the deadline
        visit.retryable = err.retryable and not after_first_chunk and delay is not None
        visit.retry_at = self._clock() + (delay or 0.0)
        if run.spent():
            run.deadline_hit = True
        if after_first_chunk:
            reason = f"after first chunk: {reason}"
        if visit.panic:
            reason = f"{PANIC}; {reason}"
        run.add(
            visit.name,
            visit.spec,
            Outcome.FAILED,
            status=err.status,
            reason=reason,
            latency_ms=run.ms_since(t0),
            retry_after=err.retry_after,
        )
        visit.attempt_index = len(run.attempts) - 1

    def _finish(
        self,
        run: _Run,
        visit: _Visit,
        end: Completion,
        t0: float,
    ) -> ChatResponse:
        spec = visit.spec
        input_tokens, output_tokens = end.input_tokens, end.output_tokens
        estimated = input_tokens is None or output_tokens is None
        if input_tokens is None:
            input_tokens = run.request.estimated_input_tokens()
        if output_tokens is None:
            output_tokens = (sum(c.output_chars() for c in end.choices) + 3) // 4
        reason = PANIC if visit.panic else ""
        run.add(visit.name, spec, Outcome.OK, status=200, reason=reason,
                latency_ms=run.ms_since(t0))  # fmt: skip
        return ChatResponse(
            text=end.text,
            finish_reason=end.finish_reason,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=visit.name,
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
        status = 503 if run.deadline_hit or run.calls == 0 else 502
        why = "deadline exceeded" if run.deadline_hit else "no model answered"
        if run.calls == 0 and not run.deadline_hit:
            why = "no model available"
        waits = [a.retry_after for a in run.attempts if a.retry_after is not None]
        if not waits and any(a.reason.startswith("breaker") for a in run.attempts):
            waits = [self.models.breaker.cooldown_s]
        if not waits:
            cooling = [self.cooldowns.remaining(a.model) for a in run.attempts]
            waits = [c for c in cooling if c > 0]
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
