"""A/B variants and canaries as pure parts: route keys, sticky assignment, the monitor."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

from intent_router.access import ANONYMOUS, Principal
from intent_router.access.context import RequestAccess
from intent_router.errors import ModelsFileError, RouteFileError
from intent_router.models import ModelsConfig
from intent_router.observability.metrics import Metrics
from intent_router.pipeline import Call, Exchange, Plan, stages
from intent_router.providers.base import Attempt, ChatRequest, Message, Outcome
from intent_router.rollout.assign import Subject, choose, subject_for
from intent_router.rollout.canary import EDGES, CanaryMonitor, bucket_of
from intent_router.rollout.policy import CanaryPolicy
from intent_router.rollout.rollouts import Choice, Rollouts
from intent_router.routing.loader import load_routes
from intent_router.routing.schema import Route


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def route(**fields: Any) -> Route:
    return Route.model_validate({"name": "code", "utterances": ["write code"], **fields})


AB = [
    {"name": "stable", "chain": ["a", "b"], "weight": 90},
    {"name": "next", "chain": ["c"], "weight": 10, "canary": True},
]


# -- route keys ----------------------------------------------------------------------------


def write_route(folder: Path, body: dict[str, Any]) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "code.yaml"
    path.write_text(yaml.safe_dump({"name": "code", "utterances": ["write code"], **body}))
    return path


def test_a_route_file_with_variants_shadow_and_canary_loads(tmp_path: Path) -> None:
    body = {
        "variants": AB,
        "shadow": {"models": ["d"], "sample": 0.25},
        "canary": {"min_requests": 5},
    }
    routes = load_routes(write_route(tmp_path / "r", body).parent)
    loaded = routes.get("code")
    assert [v.name for v in loaded.variants] == ["stable", "next"]
    assert loaded.shadow is not None and loaded.shadow.sample == 0.25
    assert loaded.canary is not None and loaded.canary.min_requests == 5
    assert loaded.canary.max_p95_ratio == 1.5  # unset keys take the defaults
    assert loaded.baseline_chain == ["a", "b"]
    assert (
        routes.model_lists()
        == loaded.model_lists()
        == {
            "code (variant stable)": ["a", "b"],
            "code (variant next)": ["c"],
            "code (shadow)": ["d"],
        }
    )


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"chain": ["a"], "variants": AB}, "variants", "not both"),
        ({"variants": [AB[0], {**AB[1], "name": "stable"}]}, "variants", "used twice"),
        ({"variants": [AB[1]]}, "variants", "no baseline"),
        ({"variants": [{**AB[0], "weight": 0}, AB[1]]}, "variants", "no baseline"),
        ({"variants": [{**AB[0], "weight": -1}]}, "variants.0.weight", "greater than or equal"),
        ({"variants": [{**AB[0], "chain": []}]}, "variants.0.chain", "at least 1"),
        ({"variants": [{**AB[0], "wieght": 3}]}, "variants.0.wieght", "unknown key"),
        ({"chain": ["a"], "canary": {}}, "canary", "no variant has `canary: true`"),
        ({"chain": ["a"], "shadow": {"models": ["d"], "sample": 1.5}}, "shadow.sample", "less"),
        ({"chain": ["a"], "shadow": {"models": ["d", "d"], "sample": 1}}, "shadow", "twice"),
        ({"variants": AB, "canary": {"max_p95_ratio": 0.5}}, "canary.max_p95_ratio", "greater"),
    ],
)
def test_bad_rollout_keys_are_refused_with_file_and_field(
    tmp_path: Path, body: dict[str, Any], field: str, words: str
) -> None:
    path = write_route(tmp_path / "r", body)
    with pytest.raises(RouteFileError) as err:
        load_routes(path.parent)
    assert err.value.field == field, str(err.value)
    assert words in str(err.value)
    assert str(path) in str(err.value)


def test_a_none_route_refuses_variants_and_shadow(tmp_path: Path) -> None:
    for key, value in (("variants", AB), ("shadow", {"models": ["d"], "sample": 1})):
        path = write_route(tmp_path / key, {"kind": "none", key: value})
        with pytest.raises(RouteFileError, match=f"takes no {key}"):
            load_routes(path.parent)


def test_models_check_names_the_variant_and_the_shadow() -> None:
    cfg = ModelsConfig.model_validate(
        {
            "default_chain": ["a"],
            "models": {
                n: {"provider": "openai", "base_url": "http://x", "model": n} for n in "abc"
            },
        }
    )
    good = route(variants=AB)
    cfg.check_chains(good.model_lists())
    bad = route(variants=[AB[0], {**AB[1], "chain": ["zz"]}])
    with pytest.raises(ModelsFileError, match=r"route 'code \(variant next\)' names unknown"):
        cfg.check_chains(bad.model_lists())
    shadowed = route(chain=["a"], shadow={"models": ["yy"], "sample": 0.1})
    with pytest.raises(ModelsFileError, match=r"route 'code \(shadow\)' names unknown model 'yy'"):
        cfg.check_chains(shadowed.model_lists())


# -- sticky assignment ---------------------------------------------------------------------


def test_the_subject_is_the_key_then_the_user_then_the_request() -> None:
    assert subject_for("key_1", "alice", "req_9") == Subject("key", "key_1")
    assert subject_for(None, "alice", "req_9") == Subject("user", "alice")
    fallback = subject_for(None, None, "req_9")
    assert fallback == Subject("request", "req_9") and not fallback.sticky


def test_one_subject_always_gets_the_same_variant() -> None:
    weights = {"stable": 50.0, "next": 50.0}
    for user in ("alice", "bob", "carol", "dave"):
        subject = Subject("user", user)
        seen = {choose("code", subject, weights) for _ in range(200)}
        assert len(seen) == 1


def test_weights_are_respected_over_many_subjects() -> None:
    weights = {"stable": 70.0, "next": 20.0, "other": 10.0}
    counts = Counter(choose("code", Subject("user", f"u{i}"), weights) for i in range(20_000))
    assert abs(counts["stable"] / 20_000 - 0.70) < 0.015
    assert abs(counts["next"] / 20_000 - 0.20) < 0.015
    assert abs(counts["other"] / 20_000 - 0.10) < 0.015
    # another route splits the same users independently
    other = [choose("chat", Subject("user", f"u{i}"), weights) for i in range(2000)]
    mine = [choose("code", Subject("user", f"u{i}"), weights) for i in range(2000)]
    assert sum(a != b for a, b in zip(other, mine, strict=True)) > 500


def test_rolling_a_canary_back_moves_only_the_canarys_subjects() -> None:
    before = {"a": 45.0, "b": 45.0, "canary": 10.0}
    after = {**before, "canary": 0.0}
    users = [Subject("user", f"u{i}") for i in range(5000)]
    moved = [(choose("code", u, before), choose("code", u, after)) for u in users]
    assert all(old == new for old, new in moved if old != "canary")
    landed = Counter(new for old, new in moved if old == "canary")
    assert set(landed) == {"a", "b"} and min(landed.values()) > 150  # spread over both


def test_raising_a_weight_only_moves_subjects_to_that_variant() -> None:
    before = {"a": 45.0, "b": 45.0, "c": 10.0}
    after = {**before, "c": 30.0}
    users = [Subject("key", f"k{i}") for i in range(5000)]
    changed = [(choose("r", u, before), choose("r", u, after)) for u in users]
    moves = [(old, new) for old, new in changed if old != new]
    assert moves and all(new == "c" for _, new in moves)


# -- the canary monitor --------------------------------------------------------------------


def test_latency_buckets_bound_the_p95_within_a_bucket() -> None:
    for seconds in (0.0004, 0.001, 0.0123, 0.5, 3.0, 120.0):
        edge = EDGES[bucket_of(seconds)]
        assert edge >= seconds and (bucket_of(seconds) == 0 or edge < seconds * 1.19 + 1e-9)


def feed(monitor: CanaryMonitor, variant: str, n: int, *, errors: int = 0, s: float = 0.1) -> None:
    for i in range(n):
        monitor.record(variant, error=i < errors, latency_s=s)


def test_no_verdict_before_min_requests_on_both_sides() -> None:
    monitor = CanaryMonitor(CanaryPolicy(min_requests=10), clock=Clock())
    feed(monitor, "next", 9, errors=9)
    feed(monitor, "stable", 50)
    assert monitor.verdict("next", ["stable"]) is None
    feed(monitor, "next", 1, errors=1)
    verdict = monitor.verdict("next", ["stable"])
    assert verdict is not None and verdict.reason == "error_rate"
    assert verdict.canary.requests == 10 and verdict.canary.errors == 10
    assert verdict.baseline.error_rate == 0.0


def test_error_rate_within_the_margin_is_no_verdict() -> None:
    monitor = CanaryMonitor(CanaryPolicy(min_requests=10, max_error_rate_delta=0.1), clock=Clock())
    feed(monitor, "next", 20, errors=3)  # 15 %
    feed(monitor, "stable", 100, errors=10)  # 10 %: delta 5 points, under 10
    assert monitor.verdict("next", ["stable"]) is None
    feed(monitor, "next", 10, errors=4)  # 7/30 = 23 %
    assert monitor.verdict("next", ["stable"]) is not None


def test_a_slow_canary_is_judged_on_its_p95() -> None:
    monitor = CanaryMonitor(CanaryPolicy(min_requests=20, max_p95_ratio=1.5), clock=Clock())
    feed(monitor, "stable", 40, s=0.1)
    feed(monitor, "next", 20, s=0.13)  # 1.3x: inside the margin
    assert monitor.verdict("next", ["stable"]) is None
    feed(monitor, "next", 20, s=0.4)
    verdict = monitor.verdict("next", ["stable"])
    assert verdict is not None and verdict.reason == "p95"
    assert verdict.canary.p95_s is not None and verdict.canary.p95_s >= 0.4


def test_old_outcomes_leave_the_window() -> None:
    clock = Clock()
    monitor = CanaryMonitor(CanaryPolicy(min_requests=5, window_s=60), clock=clock)
    feed(monitor, "next", 5, errors=5)
    feed(monitor, "stable", 5)
    clock.now += 61
    assert monitor.stats(["next"]).requests == 0
    feed(monitor, "next", 5)
    feed(monitor, "stable", 5)
    assert monitor.verdict("next", ["stable"]) is None


# -- rollouts: choice, outcome feed, rollback ----------------------------------------------


def ok(model: str) -> Attempt:
    return Attempt(model, "openai", Outcome.OK, 200, "", 10.0, None)


def failed(model: str, status: int = 500) -> Attempt:
    return Attempt(model, "openai", Outcome.FAILED, status, "boom", 10.0, None)


def variant_of(rollouts: Rollouts, subject: Subject) -> str:
    choice = rollouts.choose("code", subject)
    assert choice is not None
    return choice.variant


def user_of(rollouts: Rollouts, variant: str) -> Subject:
    """A user the route ``code`` assigns to ``variant``."""
    users = (Subject("user", f"u{i}") for i in range(1000))
    return next(u for u in users if variant_of(rollouts, u) == variant)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_a_canary_falls_back_to_the_baseline_chain() -> None:
    rollouts = Rollouts([route(variants=AB)], Metrics().rollout, clock=Clock())
    chains = {}
    for i in range(400):
        choice = rollouts.choose("code", Subject("user", f"u{i}"))
        assert choice is not None
        chains[choice.variant] = choice.chain
    assert chains == {"stable": ["a", "b"], "next": ["c", "a", "b"]}
    assert rollouts.choose("chat", Subject("user", "u1")) is None  # no variants there
    assert rollouts.choose(None, Subject("user", "u1")) is None


def test_a_failing_canary_is_rolled_back_even_when_the_fallback_saved_every_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    rollouts = Rollouts([route(variants=AB, canary={"min_requests": 10})], metrics.rollout,
                        clock=Clock())  # fmt: skip
    users = [Subject("user", f"u{i}") for i in range(500)]
    canary_users = [u for u in users if variant_of(rollouts, u) == "next"]
    assert sample(metrics, "intent_router_canary_weight", route="code", variant="next") == 10
    with caplog.at_level(logging.WARNING, logger="intent_router.rollout.rollouts"):
        for i, user in enumerate(users):  # noqa: B007 (i is read after the loop)
            choice = rollouts.choose("code", user)
            assert choice is not None
            if choice.canary:  # c fails, a answers: the client saw an answer
                rollouts.observe(choice, [failed("c"), ok("a")], answered=True, latency_s=0.1)
            else:
                rollouts.observe(choice, [ok("a")], answered=True, latency_s=0.1)
            if rollouts.routes["code"].weights["next"] == 0:
                break
    assert rollouts.routes["code"].weights["next"] == 0.0
    assert i < 200  # ~10 canary requests at 10 %, plus the baseline's 10
    assert sample(metrics, "intent_router_canary_weight", route="code", variant="next") == 0
    rollbacks = sample(
        metrics, "intent_router_canary_rollbacks_total", route="code", variant="next"
    )
    assert rollbacks == 1
    recovered = {"route": "code", "variant": "next", "outcome": "recovered"}
    assert sample(metrics, "intent_router_variant_requests_total", **recovered) == 10
    [warning] = [r for r in caplog.records if "rolled back" in r.getMessage()]
    assert "route code variant next" in warning.getMessage()
    assert "error_rate" in warning.getMessage() and "1.000 over 10" in warning.getMessage()
    # after the rollback the canary's users are served by the baseline
    assert {variant_of(rollouts, u) for u in canary_users} == {"stable"}
    state = rollouts.to_dict()["routes"]["code"]
    [stable, nxt] = state["variants"]
    assert nxt["weight"] == 0 and nxt["configured_weight"] == 10
    assert nxt["rolled_back"]["reason"] == "error_rate"
    assert stable["rolled_back"] is None and state["baseline"]["requests"] >= 10


def test_a_healthy_canary_stays_and_a_request_fault_is_no_error() -> None:
    metrics = Metrics()
    rollouts = Rollouts([route(variants=AB, canary={"min_requests": 5})], metrics.rollout,
                        clock=Clock())  # fmt: skip
    for i in range(300):
        choice = rollouts.choose("code", Subject("user", f"u{i}"))
        assert choice is not None
        attempts = [failed(choice.chain[0], 400)] if i % 2 else [ok(choice.chain[0])]
        rollouts.observe(choice, attempts, answered=i % 2 == 0, latency_s=0.05)
    assert rollouts.routes["code"].weights["next"] == 10
    errors = {"route": "code", "variant": "stable", "outcome": "error"}
    assert sample(metrics, "intent_router_variant_requests_total", **errors) > 0


def test_a_rollback_survives_a_reload_that_keeps_the_variants() -> None:
    metrics = Metrics().rollout
    first = Rollouts([route(variants=AB, canary={"min_requests": 1})], metrics, clock=Clock())
    for variant, attempts in (("stable", [ok("a")]), ("next", [failed("c"), ok("a")])):
        choice = first.choose("code", user_of(first, variant))
        assert choice is not None
        first.observe(choice, attempts, answered=True, latency_s=0.1)
    assert first.routes["code"].weights["next"] == 0
    same = Rollouts([route(variants=AB, canary={"min_requests": 1})], metrics, clock=Clock())
    same.carry_over(first)
    assert same.routes["code"].weights["next"] == 0
    changed_ab = [AB[0], {**AB[1], "chain": ["b"]}]
    changed = Rollouts([route(variants=changed_ab)], metrics, clock=Clock())
    changed.carry_over(first)
    assert changed.routes["code"].weights["next"] == 10


def test_a_canary_whose_breaker_is_open_counts_as_failing() -> None:
    metrics = Metrics()
    rollouts = Rollouts([route(variants=AB)], metrics.rollout, clock=Clock())
    choice = rollouts.choose("code", user_of(rollouts, "next"))
    assert choice is not None
    skipped = Attempt("c", "openai", Outcome.SKIPPED, None, "breaker open", 0.0, None)
    rollouts.observe(choice, [skipped, ok("a")], answered=True, latency_s=0.1)
    cooling = Attempt("c", "openai", Outcome.SKIPPED, None, "cooling down after 429", 0.0, None)
    rollouts.observe(choice, [cooling, ok("a")], answered=True, latency_s=0.1)
    labels = {"route": "code", "variant": "next"}
    assert (
        sample(metrics, "intent_router_variant_requests_total", outcome="recovered", **labels) == 1
    )
    assert sample(metrics, "intent_router_variant_requests_total", outcome="ok", **labels) == 1


# -- the pipeline stage --------------------------------------------------------------------


async def choose_for(rollouts: Rollouts, principal: Principal, user: str | None) -> Choice:
    """Run the ``choose_variant`` stage on a request routed to ``code``."""
    runtime: Any = SimpleNamespace(rollouts=rollouts)
    request = ChatRequest(messages=[Message(role="user", content="write code")], user=user)
    ex = Exchange(call=Call.now(None, "complete"), request=request, runtime=runtime,
                  access=RequestAccess(principal=principal))  # fmt: skip
    ex.plan = Plan(decision=None, chain=["x"], pinned=None, text="write code",
                   vector=np.zeros(0), route="code")  # fmt: skip
    await stages.choose_variant(ex)
    assert ex.plan.variant is not None and ex.plan.chain == ex.plan.variant.chain
    return ex.plan.variant


async def test_the_stage_assigns_by_key_then_user_then_request() -> None:
    rollouts = Rollouts([route(variants=[{**AB[0], "weight": 50}, {**AB[1], "weight": 50}])],
                        Metrics().rollout, clock=Clock())  # fmt: skip
    keyed = Principal(key_id="key_7", name="ci")
    by_key = [await choose_for(rollouts, keyed, f"user-{i}") for i in range(40)]
    assert {c.variant for c in by_key} == {by_key[0].variant}
    assert all(c.subject == Subject("key", "key_7") for c in by_key)
    by_user = [await choose_for(rollouts, ANONYMOUS, f"user-{i % 2}") for i in range(40)]
    assert len({(c.subject.value, c.variant) for c in by_user}) == 2
    per_request = [await choose_for(rollouts, ANONYMOUS, None) for _ in range(40)]
    assert all(c.subject.kind == "request" and not c.subject.sticky for c in per_request)
    assert {c.variant for c in per_request} == {"stable", "next"}


def test_a_rollback_decided_on_the_old_configuration_after_a_reload_holds_on_the_new() -> None:
    metrics = Metrics().rollout
    policy = {"min_requests": 1}
    old = Rollouts([route(variants=AB, canary=policy)], metrics, clock=Clock())
    in_flight = [old.choose("code", user_of(old, v)) for v in ("stable", "next")]
    new = Rollouts([route(variants=AB, canary=policy)], metrics, clock=Clock())
    new.carry_over(old)
    stable, nxt = in_flight
    assert stable is not None and nxt is not None
    old.observe(stable, [ok("a")], answered=True, latency_s=0.1)  # finishing on the old one
    old.observe(nxt, [failed("c"), ok("a")], answered=True, latency_s=0.1)
    assert new.routes["code"].weights["next"] == 0
    assert new.to_dict()["routes"]["code"]["variants"][1]["rolled_back"] is not None
