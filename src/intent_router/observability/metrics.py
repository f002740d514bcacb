"""Every Prometheus series of the router, declared once on one registry per app.

Names and label names are a contract (dashboards read them). Label values come only from
the configuration (routes, models) plus ``none`` and ``other``: never request ids, paths
or user text. Each app gets its own :class:`Metrics` (tests build many apps in a process),
so nothing here is bound to the client's default registry.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from intent_router.observability.rollout_metrics import RolloutMetrics

PREFIX = "intent_router_"
# Router-side work (embedding, cache, routing): from half a millisecond up.
ROUTER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Whole requests and upstream calls: tens of milliseconds to five minutes.
UPSTREAM_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
ENDPOINTS = frozenset({"chat.completions", "messages", "complete", "route", "stream"})
BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
Refresh = Callable[["Metrics"], None]


def endpoint_label(endpoint: str) -> str:
    return endpoint if endpoint in ENDPOINTS else "other"


def retry_reason(status: int | None, reason: str) -> str:
    """A bounded retry reason from an attempt's status and message (never the message)."""
    if status == 429:
        return "rate_limited"
    if status is not None and status >= 500:
        return "server_error"
    if "timed out" in reason or "stalled" in reason:
        return "timeout"
    if status is None:
        return "connection"
    return "other"


class Metrics:
    """The series, on ``self.registry``; the parts that record are handed this object."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._refreshers: list[Refresh] = []
        self._routes: frozenset[str] = frozenset()
        self._models: frozenset[str] = frozenset()

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=r)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=r)

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(PREFIX + name, doc, labels, registry=r, buckets=buckets)

        # -- requests and upstream calls
        self.request_duration = histogram(
            "request_duration_seconds", "Whole requests, by endpoint, route and answering model.",
            ("endpoint", "route", "model"), UPSTREAM_BUCKETS,
        )  # fmt: skip
        self.upstream_duration = histogram(
            "upstream_duration_seconds", "Upstream calls by model and outcome (ok/failed/retried).",
            ("model", "outcome"), UPSTREAM_BUCKETS,
        )  # fmt: skip
        self.ttft = histogram(
            "time_to_first_token_seconds", "Streams: request start to the first event sent.",
            ("model",), UPSTREAM_BUCKETS,
        )  # fmt: skip
        self.overhead = histogram(
            "overhead_seconds", "Router time of a request excluding upstream waits.",
            (), ROUTER_BUCKETS,
        )  # fmt: skip
        self.embed = histogram(
            "embed_seconds", "Embedding a request's text (queueing in the batcher included).",
            (), ROUTER_BUCKETS,
        )  # fmt: skip
        self.tokens = counter(
            "tokens", "Tokens by model and kind (input/output).", ("model", "kind")
        )
        self.cost = counter("cost_usd", "Upstream cost in US dollars.", ("model", "route"))
        self.cache_lookups = counter(
            "cache_lookups", "Cache lookups by tier (exact/semantic) and result (hit/miss/stale).",
            ("tier", "result"),
        )  # fmt: skip
        self.fallbacks = counter(
            "fallbacks", "Answers given by a later model of the chain than the first.",
            ("from_model", "to_model"),
        )  # fmt: skip
        self.retries = counter("retries", "Retries of a model, by reason.", ("model", "reason"))
        self.breaker_state = gauge(
            "breaker_state", "Circuit breaker per model: 0 closed, 1 half-open, 2 open.", ("model",)
        )
        self.answered = counter(
            "answered", "Requests answered, by route and answering model.", ("route", "model")
        )
        # -- routing (service)
        self.routed = counter(
            "routed", "Routing decisions by route (none = out of scope).", ("route",)
        )
        self.encoder_batches = counter(
            "encoder_batches", "Encoder calls made by the micro-batcher."
        )
        self.encoder_batch_items = counter(
            "encoder_batch_items", "Queries embedded by the micro-batcher."
        )
        self.encoder_batch_size_max = gauge(
            "encoder_batch_size_max", "Largest batch embedded so far."
        )
        # -- resilience (dispatcher)
        self.retries_skipped = counter("retries_skipped", "Retries refused by the retry budget.")
        self.panic_calls = counter(
            "panic_calls", "Calls let through while every model of a chain was unavailable."
        )
        self.rate_limited = counter("rate_limited", "429 answers that cooled a model down.")
        self.model_in_flight = gauge("model_in_flight", "Calls in flight per model.", ("model",))
        self.model_at_capacity = counter(
            "model_at_capacity", "Calls not made because the model was at its max_in_flight.",
            ("model",),
        )  # fmt: skip
        # -- admission (api)
        self.in_flight = gauge("in_flight", "Requests admitted and not finished.")
        self.queued = gauge("queued", "Requests waiting for a slot.")
        self.shed = counter(
            "shed", "Requests answered 503 by load shedding, by reason.", ("reason",)
        )
        for reason in ("queue_full", "queue_timeout"):
            self.shed.labels(reason)
        self.body_too_large = counter(
            "body_too_large", "Requests refused with 413 (body over max_body_bytes)."
        )
        # -- decision log
        self.decision_log_dropped = counter(
            "decision_log_dropped", "Decision rows dropped because the writer's queue was full."
        )
        # -- variants, shadow calls, canaries (rollout)
        self.rollout = RolloutMetrics(r)

    def declare_routes(self, routes: list[str]) -> None:
        """The route names a ``route`` label may take (anything else is ``other``)."""
        self._routes = frozenset(routes)

    def route_label(self, route: str | None) -> str:
        if route is None:
            return "none"
        return route if not self._routes or route in self._routes else "other"

    def model_label(self, model: str | None) -> str:
        if model is None:
            return "none"
        return model if not self._models or model in self._models else "other"

    def declare_models(self, models: list[str]) -> None:
        """Per-model series start at zero, so they exist before the first request; the
        model names a ``model`` label may take (anything else is ``other``)."""
        self._models = frozenset(models)
        for model in models:
            self.breaker_state.labels(model).set(0)
            self.model_in_flight.labels(model).set(0)
            self.model_at_capacity.labels(model)
            for kind in ("input", "output"):
                self.tokens.labels(model, kind)
        for tier in ("exact", "semantic"):
            for result in ("hit", "miss", "stale"):
                if tier == "semantic" or result != "stale":
                    self.cache_lookups.labels(tier, result)

    def observe_route(self, route: str | None, seconds: float) -> None:
        """A ``/route`` request: a routing decision, no model."""
        self.request_duration.labels("route", self.route_label(route), "none").observe(seconds)

    def on_scrape(self, refresh: Refresh) -> None:
        """``refresh(metrics)`` sets the state gauges (breakers, in-flight) before a scrape."""
        if refresh not in self._refreshers:
            self._refreshers.append(refresh)

    def off_scrape(self, refresh: Refresh) -> None:
        """Stop calling ``refresh`` (the dispatcher of a configuration a reload replaced)."""
        if refresh in self._refreshers:
            self._refreshers.remove(refresh)

    def exposition(self) -> bytes:
        for refresh in self._refreshers:
            refresh(self)
        return generate_latest(self.registry)
