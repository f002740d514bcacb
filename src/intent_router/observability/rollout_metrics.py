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
VARIANT_OUTCOMES = ("ok", "recovered", "error")
SHADOW_OUTCOMES = ("ok", "error", "dropped")


class RolloutMetrics:
    """Declared once per app (``Metrics.rollout``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.variant_requests = Counter(
            PREFIX + "variant_requests",
            "Dispatched requests by route, variant and outcome (ok; recovered: a model of the "
            "variant failed and a later one answered; error: no answer).",
            ("route", "variant", "outcome"), registry=r,
        )  # fmt: skip
        self.canary_weight = Gauge(
            PREFIX + "canary_weight",
            "Current weight of each canary variant (0 once rolled back).",
            ("route", "variant"), registry=r,
        )  # fmt: skip
        self.canary_rollbacks = Counter(
            PREFIX + "canary_rollbacks", "Canary variants rolled back automatically.",
            ("route", "variant"), registry=r,
        )  # fmt: skip
        self.shadow_requests = Counter(
            PREFIX + "shadow_requests",
            "Shadow calls by route, model and outcome (ok, error, dropped: over max_in_flight).",
            ("route", "model", "outcome"), registry=r,
        )  # fmt: skip
        self.shadow_duration = Histogram(
            PREFIX + "shadow_duration_seconds", "Shadow calls, start to answer.",
            ("route", "model"), registry=r, buckets=SHADOW_BUCKETS,
        )  # fmt: skip
        self.shadow_similarity = Histogram(
            PREFIX + "shadow_similarity",
            "Cosine similarity of a shadow answer to the served one (the router's encoder).",
            ("route", "model"), registry=r, buckets=SIMILARITY_BUCKETS,
        )  # fmt: skip
        self.shadow_tokens = Counter(
            PREFIX + "shadow_tokens", "Tokens of shadow calls by model and kind (input/output).",
            ("model", "kind"), registry=r,
        )  # fmt: skip
        self.shadow_cost = Counter(
            PREFIX + "shadow_cost_usd", "Upstream cost of shadow calls in US dollars.",
            ("route", "model"), registry=r,
        )  # fmt: skip
