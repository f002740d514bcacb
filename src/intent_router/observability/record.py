"""What one request did, once: the decision-log row and the metrics are both read from it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from intent_router.observability.metrics import Metrics, endpoint_label, retry_reason
from intent_router.providers.base import Attempt, Outcome


def new_request_id() -> str:
    """A request id for a client that sent none (``x-request-id``)."""
    return f"req_{uuid.uuid4().hex}"


@dataclass
class RequestRecord:
    """Filled by the gateway as the request goes; ``row()`` is its decision-log line."""

    request_id: str
    endpoint: str
    time: float  # wall clock (seconds since the epoch) when the request started
    route: str | None = None
    pinned: str | None = None
    chain: list[str] = field(default_factory=list)
    routing: dict[str, Any] = field(default_factory=dict)  # score, candidates, threshold …
    cache: str | None = None  # exact / semantic / stale, None when not served from cache
    similarity: float | None = None
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    outcome: str = "ok"
    error: str | None = None
    reason: str | None = None
    stale_because: str | None = None  # the error a stale answer stood in for
    latency_s: float = 0.0
    prompt: str | None = None  # only when --log-prompts asks for it
    notes: dict[str, Any] = field(default_factory=dict)  # budget, pii_gate: as decided
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (model, why) off the chain
    key_id: str | None = None  # the API key's id (never its secret); None without keys
    team: str | None = None  # the key's team

    @property
    def upstream_s(self) -> float:
        return sum(a.latency_ms for a in self.called()) / 1000

    def called(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome is not Outcome.SKIPPED]

    def row(self) -> dict[str, Any]:
        """The decision-log row: keys stay, values may be null."""
        candidates = self.routing.get("candidates") or []
        scores = [c["score"] for c in candidates]
        row: dict[str, Any] = {
            "request_id": self.request_id,
            "time": round(self.time, 3),
            "endpoint": self.endpoint,
            "route": self.route,
            "score": self.routing.get("score"),
            "margin": round(scores[0] - scores[1], 6) if len(scores) > 1 else None,
            "candidates": candidates,
            "threshold": self.routing.get("threshold"),
            "decided_by": self.routing.get("decided_by"),
            "pinned_model": self.pinned,
            "chain": self.chain,
            "cache": self.cache,
            "cache_similarity": None if self.similarity is None else round(self.similarity, 4),
            "attempts": [_attempt(a) for a in self.attempts],
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_s * 1000, 2),
            "outcome": self.outcome,
            "key_id": self.key_id,
            "team": self.team,
        }
        conversation = {k: v for k, v in self.routing.items() if k.startswith("turn")}
        if conversation:
            row["conversation"] = conversation
        if self.error is not None or self.outcome == "stream_error":
            row.update(error=self.error, reason=self.reason)
        if self.stale_because is not None:
            row["stale_because"] = self.stale_because
        if self.skipped:
            row["skipped"] = [{"model": m, "reason": why} for m, why in self.skipped]
        if self.prompt is not None:
            row["prompt"] = self.prompt
        row.update(self.notes)
        return row

    def log_line(self) -> dict[str, Any]:
        """The ``intent_router.requests`` JSON line (shorter than the decision row)."""
        score = self.routing.get("score")
        line: dict[str, Any] = {
            "event": "request",
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "route": self.route,
            "score": None if score is None else round(score, 4),
            "decided_by": self.routing.get("decided_by"),
            "pinned_model": self.pinned,
            "chain": self.chain,
            "latency_ms": round(self.latency_s * 1000, 2),
            "cache": self.cache or "miss",
        }
        if self.key_id is not None:
            line.update(key_id=self.key_id, team=self.team)
        if self.model is not None:
            line.update(
                model=self.model,
                provider=self.provider,
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                cost_usd=self.cost_usd,
            )
        line.update(attempts=[a.to_dict() for a in self.attempts], outcome=self.outcome)
        if self.stale_because is not None:
            line["stale_because"] = self.stale_because
        if self.error is not None or self.outcome == "stream_error":
            line.update(error=self.error, reason=self.reason)
        if self.prompt is not None:
            line["prompt"] = self.prompt
        return line

    def observe(self, metrics: Metrics) -> None:
        """Count this request in the histograms and counters (labels from config only)."""
        route, model = metrics.route_label(self.route), metrics.model_label(self.model)
        endpoint = endpoint_label(self.endpoint)
        metrics.request_duration.labels(endpoint, route, model).observe(self.latency_s)
        metrics.overhead.observe(max(0.0, self.latency_s - self.upstream_s))
        for attempt in self.called():
            called = metrics.model_label(attempt.model)
            seconds = attempt.latency_ms / 1000
            metrics.upstream_duration.labels(called, attempt.outcome.value).observe(seconds)
            if attempt.outcome is Outcome.RETRIED:
                why = retry_reason(attempt.status, attempt.reason)
                metrics.retries.labels(called, why).inc()
        if self.model is None:
            return
        metrics.answered.labels(route, model).inc()
        if self.cache is not None:
            return  # a cached answer cost nothing upstream
        metrics.tokens.labels(model, "input").inc(self.input_tokens or 0)
        metrics.tokens.labels(model, "output").inc(self.output_tokens or 0)
        metrics.cost.labels(model, route).inc(self.cost_usd or 0.0)
        if self.chain and self.chain[0] != self.model:
            metrics.fallbacks.labels(metrics.model_label(self.chain[0]), model).inc()


def _attempt(attempt: Attempt) -> dict[str, Any]:
    row = attempt.to_dict()
    if attempt.outcome is Outcome.RETRIED:
        row["retry_reason"] = retry_reason(attempt.status, attempt.reason)
    return row
