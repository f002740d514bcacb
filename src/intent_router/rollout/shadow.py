"""Shadow calls: a sample of a route's requests also goes to candidate models, unserved.

:meth:`ShadowRunner.submit` is called once the served answer exists and returns at once:
each shadow call is a background task the client never waits for. A route's shadow calls
in flight are capped (``shadow.max_in_flight``); a sampled call beyond the cap is dropped
and counted (``intent_router_shadow_requests_total{outcome="dropped"}``), so a slow
candidate cannot pile up tasks. A shadow call never touches the served answer, the
response cache or the caller's budget (its cost is recorded apart, on series and rows of
its own). Streamed requests are mirrored as plain (non-streamed) calls.

For each call the runner records its latency, tokens, cost, error, and the cosine
similarity of its answer to the served one (``similarity``: the router's encoder, run
off the event loop by the caller's function): as metrics, and as one decision-log row
``{"kind": "shadow", "request_id": …}`` keyed by the served request's id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from intent_router.observability.rollout_metrics import RolloutMetrics
from intent_router.providers.base import ChatRequest, ChatResponse
from intent_router.rollout.policy import ShadowPolicy

if TYPE_CHECKING:
    from intent_router.embedding.encoder import Encoder

log = logging.getLogger(__name__)

ShadowCall = Callable[[ChatRequest, str, str], Awaitable[ChatResponse]]
"""``call(request, model, route)``: one shadow call to one model."""
Similarity = Callable[[str, str], Awaitable[float]]
"""``similarity(served_text, shadow_text)``: cosine of the two answers."""
RowSink = Callable[[dict[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class _Job:
    request_id: str
    route: str
    model: str
    request: ChatRequest
    served_model: str
    served_text: str
    call: ShadowCall
    similarity: Similarity | None  # None: not measured (the route's shadow.similarity)


class ShadowRunner:
    """Samples requests, runs their shadow calls as bounded background tasks, records them."""

    def __init__(
        self,
        metrics: RolloutMetrics,
        *,
        sink: RowSink | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self._sink = sink
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._wall = wall
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def in_flight(self, route: str) -> int:
        return self._in_flight.get(route, 0)

    def submit(
        self,
        route: str,
        policy: ShadowPolicy,
        request: ChatRequest,
        served: ChatResponse,
        request_id: str,
        *,
        call: ShadowCall,
        similarity: Similarity,
    ) -> int:
        """Sample this request and start its shadow calls; never waits. Returns the number
        of calls started (0 when not sampled or all dropped). ``call`` and ``similarity``
        come from the configuration that served the request (its dispatcher, its encoder)."""
        if policy.sample <= 0 or self._rng.random() >= policy.sample:
            return 0
        mirrored = dataclasses.replace(request, stream=False, stream_options=None)
        started = 0
        for model in policy.models:
            if self.in_flight(route) >= policy.max_in_flight:
                self.metrics.shadow_requests.labels(route, model, "dropped").inc()
                continue
            self._in_flight[route] = self.in_flight(route) + 1
            job = _Job(request_id, route, model, mirrored, served.model, served.text,
                       call, similarity if policy.similarity else None)  # fmt: skip
            task = asyncio.create_task(self._run(job), name=f"shadow-{route}-{model}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _run(self, job: _Job) -> None:
        t0 = self._clock()
        try:
            response = await job.call(job.request, job.model, job.route)
        except Exception as exc:  # a shadow failure is data, never the client's problem
            self._failed(job, exc, self._clock() - t0)
            return
        finally:
            self._release(job.route)
        await self._answered(job, response, self._clock() - t0)

    def _release(self, route: str) -> None:
        self._in_flight[route] = max(0, self.in_flight(route) - 1)

    def _failed(self, job: _Job, exc: Exception, seconds: float) -> None:
        self.metrics.shadow_requests.labels(job.route, job.model, "error").inc()
        self.metrics.shadow_duration.labels(job.route, job.model).observe(seconds)
        row = self._row(job, "error", seconds)
        row.update(error=type(exc).__name__, reason=str(exc))
        self._write(row)

    async def _answered(self, job: _Job, response: ChatResponse, seconds: float) -> None:
        m = self.metrics
        m.shadow_requests.labels(job.route, job.model, "ok").inc()
        m.shadow_duration.labels(job.route, job.model).observe(seconds)
        m.shadow_tokens.labels(job.model, "input").inc(response.input_tokens)
        m.shadow_tokens.labels(job.model, "output").inc(response.output_tokens)
        m.shadow_cost.labels(job.route, job.model).inc(response.cost_usd or 0.0)
        similarity: float | None = None
        if job.similarity is not None and job.served_text.strip() and response.text.strip():
            try:
                similarity = await job.similarity(job.served_text, response.text)
            except Exception:  # the encoder failing must not lose the row
                log.warning("shadow similarity failed for %s", job.model, exc_info=True)
        if similarity is not None:
            m.shadow_similarity.labels(job.route, job.model).observe(similarity)
        row = self._row(job, "ok", seconds)
        row.update(
            upstream_model=response.upstream_model,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            cost_usd=response.cost_usd,
            similarity=None if similarity is None else round(similarity, 4),
            attempts=[a.to_dict() for a in response.attempts],
        )
        self._write(row)

    def _row(self, job: _Job, outcome: str, seconds: float) -> dict[str, Any]:
        return {
            "kind": "shadow",
            "request_id": job.request_id,
            "time": round(self._wall(), 3),
            "route": job.route,
            "model": job.model,
            "served_model": job.served_model,
            "latency_ms": round(seconds * 1000, 2),
            "outcome": outcome,
        }

    def _write(self, row: dict[str, Any]) -> None:
        if self._sink is not None:
            self._sink(row)

    async def drain(self) -> None:
        """Wait for the shadow calls in flight (tests, benchmarks; never the request path)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the shadow calls in flight (server shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def encoder_similarity(encoder: Encoder) -> Similarity:
    """Cosine of two answers by ``encoder`` (L2-normalised vectors), in a worker thread."""

    def cosine(a: str, b: str) -> float:
        vectors, _ = encoder.encode_queries([a, b], batch_size=2)
        return float(vectors[0] @ vectors[1])

    async def similarity(a: str, b: str) -> float:
        return await asyncio.to_thread(cosine, a, b)

    return similarity
