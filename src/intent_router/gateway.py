"""Answer chat requests: the pipeline of :mod:`intent_router.pipeline`, run per request.

Routing reads the conversation (:mod:`intent_router.routing.conversation`): the last user
message, unless it is a follow-up that stays on the route of the earlier ones; the cache
keys on the last user message. The conversation travels to the model unchanged. A pinned
model (``model`` other than ``auto``) bypasses routing: its chain is that model alone (with
its retries), then the ``fallbacks`` the models file gives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from intent_router.access.context import RequestAccess
from intent_router.cache import Directives
from intent_router.observability.decision_log import DecisionLog
from intent_router.observability.metrics import Metrics
from intent_router.observability.prompt_log import LogPrompts
from intent_router.observability.tracing import Tracer
from intent_router.observability.traffic import TrafficStats
from intent_router.pipeline import spend, stages
from intent_router.pipeline.exchange import (
    AUTO,
    Answer,
    Call,
    Exchange,
    OpenStream,
    Plan,
    routing_text,
)
from intent_router.pipeline.recorder import Recorder
from intent_router.pipeline.runtime import Runtime
from intent_router.providers import (
    ChatRequest,
    ChatResponse,
    DispatchEvent,
    StreamDone,
    StreamError,
    TextDelta,
    replay,
)
from intent_router.request_cache import CacheInfo
from intent_router.rollout.rollouts import Rollouts
from intent_router.rollout.shadow import ShadowRunner, encoder_similarity

__all__ = ["AUTO", "Answer", "Gateway", "OpenStream", "Plan", "Runtime", "routing_text"]

NO_DIRECTIVES = Directives()


class Gateway:
    """Routes and dispatches chat requests; owned by the server's lifespan.

    ``runtime`` is the ONE swap point of a configuration reload: each request reads it once
    (into its :class:`Exchange`) and finishes on that runtime; assigning a new
    :class:`Runtime` affects only the requests that start afterwards. Metrics, the decision
    log and the traffic picture (the :class:`Recorder`) span runtimes, and so do the shadow
    calls in flight; a new runtime keeps the canary rollbacks of variants it did not change.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        metrics: Metrics | None = None,
        decision_log: DecisionLog | None = None,
        log_prompts: LogPrompts = "off",
        tracer: Tracer | None = None,
    ) -> None:
        self.metrics = metrics if metrics is not None else runtime.dispatcher.metrics
        self._runtime = runtime
        self.recorder = Recorder(self.metrics, decision_log, log_prompts, tracer)
        sink = decision_log.write if decision_log is not None else None
        self.shadows = ShadowRunner(self.metrics.rollout, sink=sink)

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    @runtime.setter
    def runtime(self, new: Runtime) -> None:
        """The swap: one reference; the rollbacks of unchanged variants carry over."""
        new.rollouts.carry_over(self._runtime.rollouts)
        self._runtime = new

    @property
    def rollouts(self) -> Rollouts:
        """The variants, canaries and shadow policies in use (``GET /admin/rollouts``)."""
        return self._runtime.rollouts

    async def aclose(self) -> None:
        """Cancel the shadow calls still running (server shutdown)."""
        await self.shadows.aclose()

    @property
    def traffic(self) -> TrafficStats:
        return self.recorder.traffic

    def check_model(self, model: str) -> None:
        """Raise UnknownModelError unless ``model`` is ``auto`` or a configured model."""
        stages.check_model(self.runtime.models.models, model)

    def exchange(
        self,
        request: ChatRequest,
        *,
        model: str | None = None,
        endpoint: str = "complete",
        directives: Directives = NO_DIRECTIVES,
        request_id: str | None = None,
        access: RequestAccess | None = None,
    ) -> Exchange:
        """A new request's context, on the runtime current now; ``access`` is the caller
        as the key check found it (anonymous, nothing enforced, without keys)."""
        access = access if access is not None else RequestAccess()
        return Exchange(
            call=Call.now(request_id, endpoint),
            request=request,
            runtime=self.runtime,  # read once: the request keeps it to the end
            model=model,
            directives=directives,
            access=access,
        )

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
        ex = self.exchange(request, model=model, endpoint=endpoint, directives=directives,
                           request_id=request_id, access=access)  # fmt: skip
        try:
            await stages.prepare(ex)
            if not ex.answered:
                await spend.reserve(ex)
                try:
                    await stages.dispatch(ex)
                finally:
                    await spend.settle(ex)
                await stages.store(ex)
        except Exception as exc:
            await stages.settle_limits(ex)
            self._fail(ex, exc)
            raise
        await stages.settle_limits(ex)
        self._shadow(ex)
        self.recorder.record(ex)
        return ex.answer()

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
        """The same stages; ChainExhaustedError surfaces before anything is sent.

        A cache hit (or a stale answer) is replayed as a stream; a stream that completes is
        stored, one that fails or is cut short is not; the record is written when the stream
        ends. The answering model is known when this returns.
        """
        ex = self.exchange(request, model=model, endpoint=endpoint, directives=directives,
                           request_id=request_id, access=access)  # fmt: skip
        try:
            await stages.prepare(ex)
            if not ex.answered:
                await spend.reserve(ex)
            opened = None if ex.answered else await stages.open_stream(ex)
        except Exception as exc:
            await spend.settle(ex)  # nothing was sent: the reservation goes back
            await stages.settle_limits(ex)
            self._fail(ex, exc)
            raise
        if opened is None:
            await spend.settle(ex)
            answer = ex.answer()
            await stages.settle_limits(ex)
            self.recorder.record(ex)
            self.recorder.first_token(ex, answer.response.model)
            return OpenStream(ex.plan, ex.cache, answer.response.model, replay(answer.response))
        self.recorder.first_token(ex, opened.model)
        return OpenStream(ex.plan, CacheInfo(hit=None), opened.model, self._relay(ex, opened))

    async def _relay(self, ex: Exchange, opened: stages.Opened) -> AsyncIterator[DispatchEvent]:
        """Pass the stream on; store it when it completes, settle its cost when it ends (a
        cut stream: what was sent), record it."""
        event: DispatchEvent | None = opened.first
        sent = 0  # characters of text passed on, for a stream cut before its usage
        try:
            while event is not None:
                if isinstance(event, StreamDone):
                    ex.response = event.response
                    await stages.store(ex)
                    self._shadow(ex)
                elif isinstance(event, StreamError):
                    ex.stream_error = event.message
                elif isinstance(event, TextDelta):
                    sent += len(event.text)
                yield event
                event = await anext(opened.events, None)
        finally:
            await opened.events.aclose()  # type: ignore[attr-defined]
            await spend.settle(ex, model=opened.model, output_chars=sent)
            await stages.settle_limits(ex)
            self.recorder.record(ex)

    def _shadow(self, ex: Exchange) -> None:
        """Mirror a sampled, dispatched answer's request to the route's shadow models: in the
        background, on the runtime that served it (its dispatcher and encoder)."""
        rt, route, response = ex.runtime, ex.plan.route, ex.response
        if route is None or response is None or ex.cache.hit is not None:
            return  # no route, no answer, or an answer nobody was called for
        policy = rt.rollouts.shadows.get(route)
        if policy is None:
            return

        async def call(request: ChatRequest, model: str, on_route: str) -> ChatResponse:
            return await rt.dispatcher.complete(request, [model], route=on_route)

        similarity = encoder_similarity(rt.router.encoder)
        self.shadows.submit(route, policy, ex.request, response, ex.call.request_id,
                            call=call, similarity=similarity)  # fmt: skip

    def _fail(self, ex: Exchange, exc: Exception) -> None:
        """A request that failed is still recorded: every request has its decision row."""
        ex.error = exc
        self.recorder.record(ex)
