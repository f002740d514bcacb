"""Resilience phases of ``bench_dispatch.py`` (kept apart so each file stays readable).

* **degraded**: every model's upstream fails 30 % of calls with 503 and 10 % with 429
  (no ``Retry-After``: the router's default cool-down applies); answered share,
  latency percentiles and upstream calls per request.
* **dead primaries**: every model that is first in some chain always answers 503;
  1,000 requests at 64 concurrent must all be answered, and once the breakers are open
  only probes may reach the dead models (calls counted over the last 800 requests).
* **shedding**: a second router with ``max_in_flight`` 8 gets 64 simultaneous requests;
  the refused ones must be 503 with ``Retry-After``, and the admitted ones stay fast
  (their p95 against the upstream's latency).
* **drain**: a router in its own process gets 32 slow requests, then SIGTERM; how many
  were still answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from intent_router.testing import FakeUpstream, Fault


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


async def fire(
    client: httpx.AsyncClient,
    url: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    post: Callable[..., Any],
    *,
    timeout_s: float = 240.0,
    at: tuple[int, Callable[[], None]] | None = None,
) -> tuple[list[Any], float]:
    """Send ``bodies`` with ``concurrency`` workers; ``at=(n, fn)`` calls fn after n answers."""
    results: list[Any] = []
    issued = 0
    deadline = time.monotonic() + timeout_s

    async def worker() -> None:
        nonlocal issued
        while issued < len(bodies) and time.monotonic() < deadline:
            i, issued = issued, issued + 1
            results.append(await post(client, url, bodies[i]))
            if at is not None and len(results) == at[0]:
                at[1]()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - t0


def summarise(results: list[Any], n: int, seconds: float, calls: int) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    lost = [r for r in results if not r.ok]
    outcomes: Counter[str] = Counter()
    for r in results:
        for a in r.attempts:
            reason = a["reason"].split(":")[0].split(" (")[0] if a["reason"] else ""
            outcomes[f"{a['outcome']}{': ' + reason if a['outcome'] != 'ok' else ''}"] += 1
    latencies = [r.seconds * 1000 for r in ok]
    return {
        "requests": n,
        "ok": len(ok),
        "lost": n - len(ok),
        "answered_pct": 100.0 * len(ok) / n,
        "lost_examples": sorted({f"{r.status} {r.error}"[:160] for r in lost})[:5],
        "seconds": seconds,
        "p50_ms": _pct(latencies, 50),
        "p95_ms": _pct(latencies, 95),
        "p99_ms": _pct(latencies, 99),
        "upstream_calls": calls,
        "calls_per_request": calls / max(1, len(results)),
        "answered_by": Counter(r.model or "-" for r in ok),
        "attempts": outcomes,
    }


async def phase_degraded(
    client: httpx.AsyncClient, router_url: str, fake: FakeUpstream, queries: list[str],
    post: Callable[..., Any], body: Callable[[str, str], dict[str, Any]], args: Any,
) -> dict[str, Any]:  # fmt: skip
    fake.latency_ms = args.load_latency_ms
    fake.chaos(p_503=args.p503, p_429=args.p429, seed=args.seed + 1)  # every model
    before = fake.calls()
    bodies = [body("auto", queries[i % len(queries)]) for i in range(args.requests)]
    try:
        results, seconds = await fire(
            client, f"{router_url}/v1/chat/completions", bodies, args.concurrency, post
        )
    finally:
        fake.chaos()
    return summarise(results, len(bodies), seconds, fake.calls() - before)


def report_degraded(d: dict[str, Any], args: Any) -> None:
    print(
        f"\n== 4. every model degraded: {d['requests']} requests, {args.concurrency} concurrent, "
        f"503 {args.p503:.0%} + 429 {args.p429:.0%} on every upstream (no Retry-After)"
    )
    print(
        f"  answered {d['ok']}/{d['requests']} ({d['answered_pct']:.2f} %) in "
        f"{d['seconds']:.1f} s; latency p50 {d['p50_ms']:.1f} ms, p95 {d['p95_ms']:.1f} ms, "
        f"p99 {d['p99_ms']:.1f} ms; upstream calls {d['upstream_calls']} "
        f"({d['calls_per_request']:.2f} per request)"
    )
    for example in d["lost_examples"]:
        print(f"  lost: {example}")
    print(f"  answered by: {dict(d['answered_by'].most_common())}")
    print(f"  attempts: {dict(d['attempts'].most_common())}")


async def phase_dead_primaries(
    client: httpx.AsyncClient, router_url: str, fake: FakeUpstream, queries: list[str],
    dead: dict[str, str], post: Callable[..., Any], body: Callable[[str, str], dict[str, Any]],
    args: Any,
) -> dict[str, Any]:  # fmt: skip
    """``dead``: model name → upstream id, every one always 503 during the phase."""
    fake.latency_ms = args.load_latency_ms
    for uid in dead.values():
        fake.always(uid, Fault.http(503))
    n, warm = args.dead_requests, args.dead_requests - args.dead_tail
    snapshot: dict[str, int] = {}

    def mark() -> None:
        snapshot.update({name: fake.calls(uid) for name, uid in dead.items()})
        snapshot["_at"] = int(time.monotonic() * 1000)

    before = fake.calls()
    bodies = [body("auto", queries[i % len(queries)]) for i in range(n)]
    try:
        results, seconds = await fire(
            client, f"{router_url}/v1/chat/completions", bodies, args.concurrency, post,
            at=(warm, mark),
        )  # fmt: skip
    finally:
        for uid in dead.values():
            fake.always(uid, None)
    out = summarise(results, n, seconds, fake.calls() - before)
    tail = {name: fake.calls(uid) - snapshot.get(name, 0) for name, uid in dead.items()}
    out["tail_requests"] = args.dead_tail
    tail_s = (time.monotonic() * 1000 - snapshot.get("_at", 0)) / 1000
    out["tail_seconds"] = tail_s
    # Only probes may reach an open breaker: half_open_probes per cool-down at most.
    out["probe_bound"] = args.half_open_probes * (int(tail_s // args.cooldown_s) + 1)
    out["dead_calls_in_tail"] = tail
    out["max_dead_calls_in_tail"] = max(tail.values()) if tail else 0
    return out


def report_dead(d: dict[str, Any]) -> None:
    print(
        f"\n== 5. a dead primary in every chain: {d['requests']} requests; answered "
        f"{d['ok']}/{d['requests']}; p50 {d['p50_ms']:.1f} ms, p95 {d['p95_ms']:.1f} ms; "
        f"{d['calls_per_request']:.2f} upstream calls per request"
    )
    print(
        f"  calls that reached a dead model in the last {d['tail_requests']} requests: "
        f"{d['dead_calls_in_tail']} (max {d['max_dead_calls_in_tail']} per model) over "
        f"{d['tail_seconds']:.1f} s; probes alone allow at most {d['probe_bound']} per model"
    )
    for example in d["lost_examples"]:
        print(f"  lost: {example}")


async def phase_shedding(
    router_url: str, fake: FakeUpstream, post: Callable[..., Any],
    body: dict[str, Any], latency_ms: float, n: int,
) -> dict[str, Any]:  # fmt: skip
    """``n`` simultaneous requests against a router started with a small max_in_flight."""
    fake.latency_ms = latency_ms
    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await post(client, f"{router_url}/v1/chat/completions", body)  # warm-up
        t0 = time.perf_counter()
        raw = await asyncio.gather(
            *(_timed(client, f"{router_url}/v1/chat/completions", body) for _ in range(n))
        )
        seconds = time.perf_counter() - t0
    admitted = [s for status, s, _ in raw if status == 200]
    shed = [(s, headers) for status, s, headers in raw if status == 503]
    return {
        "requests": n,
        "admitted": len(admitted),
        "shed": len(shed),
        "other": n - len(admitted) - len(shed),
        "shed_with_retry_after": sum(1 for _, h in shed if "retry-after" in h),
        "shed_p95_ms": _pct([s * 1000 for s, _ in shed], 95),
        "admitted_p50_ms": _pct([s * 1000 for s in admitted], 50),
        "admitted_p95_ms": _pct([s * 1000 for s in admitted], 95),
        "upstream_ms": latency_ms,
        "admitted_p95_over_upstream": _pct([s * 1000 for s in admitted], 95) / latency_ms,
        "seconds": seconds,
    }


async def _timed(
    client: httpx.AsyncClient, url: str, body: dict[str, Any]
) -> tuple[int, float, httpx.Headers]:
    t0 = time.perf_counter()
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError:
        return 0, time.perf_counter() - t0, httpx.Headers()
    return response.status_code, time.perf_counter() - t0, response.headers


def report_shedding(s: dict[str, Any], max_in_flight: int) -> None:
    print(
        f"\n== 6. shedding: {s['requests']} simultaneous requests, --max-in-flight "
        f"{max_in_flight}, upstream {s['upstream_ms']:.0f} ms"
    )
    print(
        f"  admitted {s['admitted']}, shed {s['shed']} (503, {s['shed_with_retry_after']} with "
        f"Retry-After; p95 {s['shed_p95_ms']:.1f} ms), other {s['other']}"
    )
    print(
        f"  admitted latency p50 {s['admitted_p50_ms']:.1f} ms, p95 {s['admitted_p95_ms']:.1f} ms "
        f"= {s['admitted_p95_over_upstream']:.2f}x the upstream latency"
    )


async def phase_drain(
    router_url: str, pid: int, fake: FakeUpstream, body: dict[str, Any], n: int, latency_ms: float
) -> dict[str, Any]:
    """``n`` requests in flight on a router process, then SIGTERM: how many are answered."""
    fake.latency_ms = latency_ms
    limits = httpx.Limits(max_connections=n + 4)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        tasks = [
            asyncio.create_task(_timed(client, f"{router_url}/v1/chat/completions", body))
            for _ in range(n)
        ]
        in_flight = 0
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                in_flight = (await client.get(f"{router_url}/readyz")).json()["in_flight"]
            if in_flight >= n:
                break
            await asyncio.sleep(0.02)
        os.kill(pid, signal.SIGTERM)
        raw = await asyncio.gather(*tasks)
    return {"requests": n, "in_flight_at_sigterm": in_flight,
            "answered": sum(1 for status, _, _ in raw if status == 200)}  # fmt: skip


def report_drain(d: dict[str, Any]) -> None:
    print(
        f"\n== 7. SIGTERM drain: {d['in_flight_at_sigterm']} requests in flight at SIGTERM, "
        f"{d['answered']}/{d['requests']} answered"
    )
