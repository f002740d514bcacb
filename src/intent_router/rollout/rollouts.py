"""The variants of every route: which one a request gets, how each does, canary rollback.

:meth:`Rollouts.choose` picks a variant after routing (sticky, :mod:`.assign`);
:meth:`Rollouts.observe` is fed the dispatch outcome of every request that had one.

**A canary falls back to the baseline.** A ``canary: true`` variant's chain is its own
models followed by the baseline chain's (the heaviest non-canary variant), minus repeats:
``[new-coder]`` with baseline ``[strong-coder, cheap-general]`` is dispatched as
``[new-coder, strong-coder, cheap-general]``. So a canary failure the fallback can cover
never reaches the client, yet it still counts: a request is an **error** of its variant
when any attempt on one of the variant's *own* models failed (for a canary: the models of
its ``chain:``; for a baseline: its whole chain) or was skipped because its breaker is
open, or when no model answered. A request's own faults (400, 413, 422) are not errors.
Latency is the whole request's.

On a rollback the canary's weight becomes 0 (its subjects move to the other variants,
nobody else moves), a warning names the route, the variant and the figures, the gauge
``intent_router_canary_weight`` drops to 0 and ``intent_router_canary_rollbacks_total``
counts it. A rollback holds until the route's variants change (:meth:`Rollouts.carry_over`
keeps it across a reload that leaves them as they were).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from intent_router.observability.rollout_metrics import RolloutMetrics
from intent_router.providers.base import Attempt, Outcome
from intent_router.rollout.assign import Subject, choose
from intent_router.rollout.canary import CanaryMonitor, Verdict
from intent_router.rollout.policy import CanaryPolicy, ShadowPolicy, Variant
from intent_router.routing.schema import Route

log = logging.getLogger(__name__)
REQUEST_FAULTS = frozenset({400, 413, 422})
FAILED = (Outcome.FAILED, Outcome.RETRIED)


@dataclass(frozen=True)
class Choice:
    """The variant a request got, and the chain it is dispatched along."""

    route: str
    variant: str
    chain: list[str]
    own: frozenset[str]  # the variant's own models (a canary's fallback excluded)
    canary: bool
    subject: Subject

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.variant,
            "canary": self.canary,
            "assigned_by": self.subject.kind,
            "sticky": self.subject.sticky,
        }


@dataclass
class Rollback:
    at: float  # wall clock
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 3),
            "reason": self.verdict.reason,
            "canary": self.verdict.canary.to_dict(),
            "baseline": self.verdict.baseline.to_dict(),
        }


@dataclass
class RouteRollout:
    """One route's variants, their current weights and its canary monitor."""

    route: str
    variants: dict[str, Variant]
    chains: dict[str, list[str]]  # as dispatched (a canary's with its fallback)
    weights: dict[str, float]
    monitor: CanaryMonitor
    shadow: ShadowPolicy | None
    rollbacks: dict[str, Rollback] = field(default_factory=dict)

    @classmethod
    def of(cls, route: Route, clock: Callable[[], float]) -> RouteRollout:
        fallback = route.baseline_chain
        chains = {
            v.name: _with_fallback(v.chain, fallback) if v.canary else list(v.chain)
            for v in route.variants
        }
        return cls(
            route=route.name,
            variants={v.name: v for v in route.variants},
            chains=chains,
            weights={v.name: v.weight for v in route.variants},
            monitor=CanaryMonitor(route.canary or CanaryPolicy(), clock=clock),
            shadow=route.shadow,
        )

    @property
    def baseline(self) -> list[str]:
        return [name for name, v in self.variants.items() if not v.canary]

    def to_dict(self) -> dict[str, Any]:
        baseline = self.monitor.stats(self.baseline)
        return {
            "canary_policy": self.monitor.policy.model_dump(),
            "baseline": baseline.to_dict(),
            "variants": [
                {
                    "name": name,
                    "chain": self.chains[name],
                    "weight": self.weights[name],
                    "configured_weight": v.weight,
                    "canary": v.canary,
                    "window": self.monitor.stats([name]).to_dict(),
                    "rolled_back": (
                        self.rollbacks[name].to_dict() if name in self.rollbacks else None
                    ),
                }
                for name, v in self.variants.items()
            ],
            "shadow": self.shadow.model_dump() if self.shadow is not None else None,
        }


def _failed(attempt: Attempt) -> bool:
    """A failure of the model's own: a failed call (not the request's fault), or a call not
    made because the model's breaker is open (the failures that opened it were its own)."""
    if attempt.outcome is Outcome.SKIPPED:
        return attempt.reason.startswith("breaker")
    return attempt.outcome in FAILED and attempt.status not in REQUEST_FAULTS


def _with_fallback(chain: Sequence[str], fallback: Sequence[str]) -> list[str]:
    return [*chain, *(m for m in fallback if m not in chain)]


class Rollouts:
    """Every route's rollout; owned by the gateway (one per loaded route set)."""

    def __init__(
        self,
        routes: Iterable[Route],
        metrics: RolloutMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self._wall = wall
        self.routes: dict[str, RouteRollout] = {
            r.name: RouteRollout.of(r, clock) for r in routes if r.variants
        }
        self.shadows: dict[str, ShadowPolicy] = {
            r.name: r.shadow for r in routes if r.shadow is not None
        }
        for rollout in self.routes.values():
            for name, variant in rollout.variants.items():
                for outcome in ("ok", "recovered", "error"):
                    metrics.variant_requests.labels(rollout.route, name, outcome)
                if variant.canary:
                    metrics.canary_weight.labels(rollout.route, name).set(variant.weight)
                    metrics.canary_rollbacks.labels(rollout.route, name)

    def choose(self, route: str | None, subject: Subject) -> Choice | None:
        """The variant of ``route`` for ``subject``; None when the route has no variants."""
        rollout = self.routes.get(route) if route is not None else None
        if rollout is None:
            return None
        name = choose(rollout.route, subject, rollout.weights)
        if name is None:  # unreachable: a baseline variant keeps a weight > 0
            name = rollout.baseline[0]
        variant = rollout.variants[name]
        return Choice(rollout.route, name, list(rollout.chains[name]),
                      frozenset(variant.chain), variant.canary, subject)  # fmt: skip

    def observe(self, choice: Choice, attempts: Sequence[Attempt], *, answered: bool,
                latency_s: float) -> None:  # fmt: skip
        """Feed one dispatched request's outcome; may roll the route's canary back."""
        rollout = self.routes.get(choice.route)
        if rollout is None or choice.variant not in rollout.variants:
            return  # the routes were reloaded while the request ran
        own_failed = any(a.model in choice.own and _failed(a) for a in attempts)
        outcome = "error" if not answered else "recovered" if own_failed else "ok"
        self.metrics.variant_requests.labels(choice.route, choice.variant, outcome).inc()
        rollout.monitor.record(choice.variant, error=outcome != "ok", latency_s=latency_s)
        if choice.canary and rollout.weights[choice.variant] > 0:
            verdict = rollout.monitor.verdict(choice.variant, rollout.baseline)
            if verdict is not None:
                self._roll_back(rollout, choice.variant, verdict)

    def _roll_back(self, rollout: RouteRollout, variant: str, verdict: Verdict) -> None:
        rollout.weights[variant] = 0.0
        rollout.rollbacks[variant] = Rollback(self._wall(), verdict)
        self.metrics.canary_weight.labels(rollout.route, variant).set(0.0)
        self.metrics.canary_rollbacks.labels(rollout.route, variant).inc()
        log.warning(
            "canary rolled back: route %s variant %s (weight %s -> 0): %s",
            rollout.route, variant, rollout.variants[variant].weight, verdict.describe(),
        )  # fmt: skip

    def carry_over(self, previous: Rollouts) -> None:
        """After a reload: a route whose variants did not change keeps its current weights
        and rollbacks (the same objects, so a request still finishing on the old
        configuration that rolls a canary back rolls it back here too), and its windows if
        its canary policy did not change; a route whose variants changed starts afresh."""
        for name, rollout in self.routes.items():
            old = previous.routes.get(name)
            if old is None or old.variants != rollout.variants:
                continue
            rollout.weights, rollout.rollbacks = old.weights, old.rollbacks
            if old.monitor.policy == rollout.monitor.policy:
                rollout.monitor = old.monitor
            for variant, weight in rollout.weights.items():
                if rollout.variants[variant].canary:
                    self.metrics.canary_weight.labels(name, variant).set(weight)

    def to_dict(self) -> dict[str, Any]:
        """Every route's variants, weights, window figures and rollbacks (``/admin/config``,
        ``GET /admin/rollouts``)."""
        return {
            "routes": {name: rollout.to_dict() for name, rollout in sorted(self.routes.items())},
            "shadow_only": {
                name: policy.model_dump()
                for name, policy in sorted(self.shadows.items())
                if name not in self.routes
            },
        }
