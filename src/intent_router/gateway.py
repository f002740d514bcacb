"""Answer chat requests: the pipeline of :mod:`intent_router.pipeline`, run per request.

Routing reads the conversation (:mod:`intent_router.routing.conversation`): the last user
message, unless it is a follow-up that stays on the route of the earlier ones; the cache
keys on the last user message. The conversation travels to the model unchanged. A pinned
model (``model`` other than ``auto``) bypasses routing: its chain is that model alone (with
its retries), then the ``fallbacks`` the models file gives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from intent_router.access.budget import BudgetLedger
from intent_router.access.context import RequestAccess
from intent_router.cache import Directives, ResponseCache
from intent_router.dispatch import Dispatcher
from intent_router.models import ModelsConfig
from intent_router.observability.decision_log import DecisionLog
from intent_router.observability.metrics import Metrics
from intent_router.observability.prompt_log import LogPrompts
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
    DispatchEvent,
    StreamDone,
    StreamError,
    TextDelta,
    replay,
)
from intent_router.request_cache import CacheInfo
from intent_router.service import RouterService

__all__ = ["AUTO", "Answer", "Gateway", "OpenStream", "Plan", "Runtime", "routing_text"]

NO_DIRECTIVES = Directives()


class Gateway:
    """Routes and dispatches chat requests; owned by the server's lifespan.

    ``runtime`` is the ONE swap point of a configuration reload: each request reads it once
    (into its :class:`Exchange`) and finishes on that runtime; assigning a new
    :class:`Runtime` affects only the requests that start afterwards. Metrics, the decision
    log and the traffic picture (the :class:`Recorder`) span runtimes.
    """

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
        ledger: BudgetLedger | None = None,
    ) -> None:
        self.metrics = metrics if metrics is not None else dispatcher.metrics
        self.runtime = Runtime.build(router, models, dispatcher, cache, self.metrics, ledger)
        self.recorder = Recorder(self.metrics, decision_log, log_prompts)

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
            principal=access.principal,
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

    def _fail(self, ex: Exchange, exc: Exception) -> None:
        """A request that failed is still recorded: every request has its decision row."""
        ex.error = exc
        self.recorder.record(ex)
