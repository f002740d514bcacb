"""The series of A/B variants, shadow calls and canaries (issue 12), on the app's registry.

New names only: the series of :mod:`intent_router.observability.metrics` keep their labels.
Label values come from the configuration (route, variant and model names).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "intent_router_"
SIMILARITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0)
SHADOW_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
ROUTE_VARIANT = ("route", "variant")
ROUTE_MODEL = ("route", "model")


class RolloutMetrics:
    """Declared once per app (``Metrics.rollout``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(PREFIX + name, doc, ROUTE_MODEL, registry=registry, buckets=buckets)

        self.variant_requests = counter(
            "variant_requests",
            "Dispatched requests by route, variant and outcome (ok; recovered: a model of the "
            "variant failed and a later one answered; error: no answer).",
            (*ROUTE_VARIANT, "outcome"),
        )
        self.canary_weight = Gauge(
            PREFIX + "canary_weight", "Current weight of each canary variant (0 once rolled back).",
            ROUTE_VARIANT, registry=registry,
        )  # fmt: skip
        self.canary_rollbacks = counter(
            "canary_rollbacks", "Canary variants rolled back automatically.", ROUTE_VARIANT
        )
        self.shadow_requests = counter(
            "shadow_requests",
            "Shadow calls by route, model and outcome (ok, error, dropped: over max_in_flight).",
            (*ROUTE_MODEL, "outcome"),
        )
        self.shadow_duration = histogram(
            "shadow_duration_seconds", "Shadow calls, start to answer.", SHADOW_BUCKETS
        )
        self.shadow_similarity = histogram(
            "shadow_similarity",
            "Cosine similarity of a shadow answer to the served one (the router's encoder).",
            SIMILARITY_BUCKETS,
        )
        self.shadow_tokens = counter(
            "shadow_tokens", "Tokens of shadow calls by model and kind (input/output).",
            ("model", "kind"),
        )  # fmt: skip
        self.shadow_cost = counter(
            "shadow_cost_usd", "Upstream cost of shadow calls in US dollars.", ROUTE_MODEL
        )
