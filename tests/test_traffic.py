"""The console's live-traffic aggregator: buckets, percentiles, cache, fallbacks, bounds."""

from __future__ import annotations

from typing import Any

from intent_router.observability.traffic import TrafficStats, event_from_log_line, percentile


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(at: float, route: str | None = "code", model: str | None = "m1", **extra: Any) -> dict:
    return {
        "time": at,
        "endpoint": "complete",
        "route": route,
        "model": model,
        "latency_ms": 10.0,
        "cache": None,
        "attempts": [{"model": model, "outcome": "ok"}] if model else [],
        "cost_usd": 0.001,
        **extra,
    }


def test_requests_land_in_their_time_bucket_by_route() -> None:
    clock = Clock(1000.0)
    stats = TrafficStats(bucket_s=10, buckets=6, clock=clock)
    stats.record(event(1001.0, "code"))
    stats.record(event(1002.0, "math"))
    stats.record(event(1012.0, None))
    clock.now = 1015.0
    snap = stats.snapshot()
    assert len(snap["buckets"]) == 6
    assert [b["start"] for b in snap["buckets"]][-2:] == [1000.0, 1010.0]
    assert snap["buckets"][-2]["by_route"] == {"code": 1, "math": 1}
    assert snap["buckets"][-1]["by_route"] == {"none": 1}
    assert snap["routes"] == ["code", "math", "none"]
    assert snap["totals"]["requests"] == 3 and abs(snap["totals"]["cost_usd"] - 0.003) < 1e-9


def test_old_buckets_roll_out_of_the_window() -> None:
    clock = Clock(1000.0)
    stats = TrafficStats(bucket_s=10, buckets=3, clock=clock)
    stats.record(event(1000.0))
    clock.now = 1031.0  # three buckets later: the first one is gone
    stats.record(event(1031.0))
    requests = [b["requests"] for b in stats.snapshot()["buckets"]]
    assert requests == [0, 0, 1]
    assert stats.snapshot()["totals"]["requests"] == 2  # totals are since start


def test_latency_percentiles_per_model_from_a_bounded_window() -> None:
    stats = TrafficStats(samples=100, clock=Clock())
    for ms in range(1, 201):  # only the last 100 (101..200) are kept
        stats.record(event(1000.0, latency_ms=float(ms)))
    stats.record(event(1000.0, model="m2", latency_ms=7.0))
    latency = stats.snapshot()["latency"]
    assert latency["m1"] == {"count": 200, "window": 100, "p50_ms": 150.0, "p95_ms": 195.0,
                             "p99_ms": 199.0}  # fmt: skip
    assert latency["m2"]["p99_ms"] == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_cache_hits_fallbacks_errors_and_breakers() -> None:
    stats = TrafficStats(clock=Clock())
    stats.record(event(1000.0, cache="exact", latency_ms=1.0, cost_usd=0.0))
    stats.record(event(1000.0, cache="semantic", latency_ms=2.0, cost_usd=0.0))
    stats.record(event(1000.0, model="m2", attempts=[
        {"model": "m1", "outcome": "http_error"}, {"model": "m2", "outcome": "ok"}]))  # fmt: skip
    stats.record(event(1000.0, model=None))
    snap = stats.snapshot(breakers={"m1": "open", "m2": "closed"})
    assert snap["cache"] == {"exact": 1, "semantic": 1, "miss": 2}
    assert snap["totals"]["cache_hit_rate"] == 0.5
    assert snap["totals"]["fallbacks"] == 1 and snap["totals"]["errors"] == 1
    assert snap["buckets"][-1]["fallbacks"] == 1 and snap["buckets"][-1]["cache_hits"] == 2
    assert set(snap["latency"]) == {"m2"}  # cache hits are not a model's latency
    assert snap["breakers"] == {"m1": "open", "m2": "closed"}


def test_names_are_bounded() -> None:
    stats = TrafficStats(max_names=3, clock=Clock())
    for i in range(10):
        stats.record(event(1000.0, route=f"r{i}", model=f"m{i}"))
    snap = stats.snapshot()
    assert snap["routes"] == ["other", "r0", "r1", "r2"]
    assert set(snap["latency"]) == {"m0", "m1", "m2", "other"}


def test_event_from_the_gateway_log_line() -> None:
    attempts = [{"model": "m1", "outcome": "ok"}]
    line = {"endpoint": "stream", "route": "math", "latency_ms": 3.5, "cache": "miss",
            "model": "m1", "attempts": attempts, "cost_usd": 0.5}  # fmt: skip
    assert event_from_log_line(line, 5.0) == {**line, "time": 5.0, "cache": None}
    assert event_from_log_line({**line, "cache": "stale"}, 5.0)["cache"] == "stale"
