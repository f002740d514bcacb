"""Benchmark the completion path: router overhead, failover under chaos, breaker behaviour.

    python3 scripts/bench_dispatch.py                      # defaults below
    python3 scripts/bench_dispatch.py --requests 2000 --concurrency 64 --router subprocess

Everything runs on 127.0.0.1. A temp dir gets a models file naming every model the shipped
``routes/`` use (strong-coder, strong-reasoner, strong-general, cheap-general, fast-small,
local-llama; openai, anthropic and gemini wires), all pointing at one
:class:`~intent_router.testing.FakeUpstream` started in this process, and the index built
from ``routes/`` (``build_on_start``). Phases, in order:

1. **Overhead.** ``POST /v1/chat/completions`` with a pinned model (``cheap-general``, an
   OpenAI-wire model: no routing, so no embedding) against the same body POSTed straight to
   the fake's ``/v1/chat/completions``; one ``httpx.AsyncClient`` (keep-alive) for both,
   one request at a time, the arms interleaved in a seeded random order per round, after a
   warm-up. A third arm, ``GET /healthz`` on the router, gives the framework floor.
   ``overhead_p50_ms``/``overhead_p95_ms`` are percentiles of the **paired differences**
   (router - direct within one round); the difference of percentiles is printed too.
   The router's own ``x_router`` timings split the overhead into layers: *edge* (client
   time - dispatcher time: HTTP server, FastAPI, body parsing, response building),
   *chain* (dispatcher time - upstream attempt time) and *hop* (the attempt as timed by
   the dispatcher - the direct call: adapter + the router's HTTP client).
2. **Load.** ``--requests`` requests, ``--concurrency`` in flight, ``model: "auto"`` with
   the queries of ``tests/data/llm_requests.jsonl`` (routing exercised), while every model
   that is first in some chain (route chains and the default chain) fails 30 % of calls
   with 503 and 10 % with 429 (``Retry-After: --retry-after``). ``local-llama`` stays
   healthy and ends every chain, so every request can be answered. ``load_ok`` = HTTP 200
   with a non-empty answer; ``load_lost`` = everything else, including requests not sent
   before ``--load-timeout-s``.
3. **Breaker.** ``strong-coder`` is made dead (always 503) and pinned requests are sent
   until its breaker opens (failure rate over ``--minimum-calls``); then requests during
   the cool-down (``breaker_open_calls`` = calls that reached the dead upstream meanwhile,
   must be 0); after the cool-down a burst of concurrent requests (exactly
   ``--half-open-probes`` probes may reach it); then it is revived, and after the next
   cool-down calls must flow again and the breaker read closed.
4. **Every model degraded** (30 % 503 + 10 % 429 on every upstream, no Retry-After),
5. **a dead primary in every chain**, 6. **shedding** with ``--shed-max-in-flight`` and
   7. **SIGTERM drain**: see ``scripts/dispatch_phases.py``.

Breaker states come from ``/metrics`` (``intent_router_breaker_state``) in both modes; with
the router in-process, a breaker listener also records every transition.

**Thread or subprocess** (``--router``). ``thread`` (the default) runs the app under
``serve_in_thread`` in this process, so client, router and fake upstream share one GIL;
``subprocess`` runs ``intent-router -q serve`` (the per-request log line is built but not
written). Measured in one run with both routers up and the arms interleaved (500 rounds,
2 shared cores, load average ~10): paired overhead p50 3.98 ms in-thread vs 5.76 ms in a
subprocess (p95 11.8 vs 13.3 ms; direct p50 1.97 ms). The overhead phase sends one request
at a time, so only one thread is busy at once and the GIL costs little, while a separate
process adds cross-process wake-ups on a busy host; threads do not inflate the figures.

**Fake-upstream work-around.** ``FakeUpstream`` leaves TCP_NODELAY off on its accepted
sockets, which adds ~40 ms to every call on a reused connection (see :func:`fake_nodelay`);
the bench turns it on (``--no-fake-nodelay`` shows the effect).

The last line printed is one JSON object, built at the end of :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from intent_router.config import Settings
from intent_router.routing.loader import load_routes
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.server import free_port, serve_in_thread

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dispatch_phases as phases  # a sibling module of this script

REPO = Path(__file__).resolve().parents[1]
ROUTES_DIR = REPO / "routes"
QUERIES_FILE = REPO / "tests" / "data" / "llm_requests.jsonl"

MODELS: dict[str, tuple[str, str]] = {  # name -> (provider, upstream model id at the fake)
    "strong-coder": ("anthropic", "claude-coder-up"),
    "strong-reasoner": ("gemini", "gemini-reasoner-up"),
    "strong-general": ("openai", "gpt-strong-up"),
    "cheap-general": ("openai", "gpt-cheap-up"),
    "fast-small": ("gemini", "gemini-flash-up"),
    "local-llama": ("openai", "llama-local-up"),
}
DEFAULT_CHAIN = ["cheap-general", "local-llama"]
PINNED = "cheap-general"  # overhead phase: OpenAI wire, so both arms send the same body
DEAD = "strong-coder"  # breaker phase
DEFAULT_ROUTER = "thread"  # measured against "subprocess": see the module docstring
OVERHEAD_QUERY = "Summarise the main argument of this paragraph in two sentences, please."
_GAUGE = re.compile(r'^intent_router_breaker_state\{model="([^"]+)"\} (\S+)$', re.MULTILINE)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# -- set-up -------------------------------------------------------------------------------


def fake_nodelay(fake: FakeUpstream) -> bool:
    """Set TCP_NODELAY on the fake's listening socket; Linux copies it to accepted ones.

    Works around a fake-upstream bug: ``FakeUpstream.start`` creates its socket with
    protocol 0, and asyncio only sets TCP_NODELAY on accepted sockets whose ``proto`` is
    IPPROTO_TCP, so every answer (headers, then body: two writes) on a reused keep-alive
    connection waits ~40 ms for the client's delayed ACK. Returns whether it applied.
    """
    server = getattr(fake, "_server", None)
    listeners = [s for srv in getattr(server, "servers", []) for s in srv.sockets]
    for sock in listeners:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return bool(listeners)


def write_models(folder: Path, fake: FakeUpstream, args: argparse.Namespace) -> Path:
    def spec(provider: str, upstream: str) -> dict[str, Any]:
        return {
            "provider": provider, "base_url": fake.base_url(provider), "model": upstream,
            "timeout_s": args.timeout_s, "max_retries": args.max_retries,
            "context_window": 32768,
            "price_per_mtok_input": 1.0, "price_per_mtok_output": 2.0,
        }  # fmt: skip

    data = {
        "default_chain": DEFAULT_CHAIN,
        "deadline_s": args.deadline_s,
        "breaker": {
            "failure_rate": args.failure_rate,
            "minimum_calls": args.minimum_calls,
            "window_s": args.window_s,
            "cooldown_s": args.cooldown_s,
            "half_open_probes": args.half_open_probes,
        },
        "models": {name: spec(*MODELS[name]) for name in MODELS},
    }
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def flaky_models() -> tuple[list[str], list[str]]:
    """(first models of every chain, the others); refuses chains with no healthy model."""
    chains = [list(r.chain) for r in load_routes(ROUTES_DIR).routes] + [DEFAULT_CHAIN]
    flaky = sorted({chain[0] for chain in chains})
    for chain in chains:
        unknown = [m for m in chain if m not in MODELS]
        if unknown or all(m in flaky for m in chain):
            raise SystemExit(f"chain {chain}: unknown models {unknown} or no healthy model")
    return flaky, sorted(set(MODELS) - set(flaky))


@dataclass
class Router:
    url: str
    mode: str
    gateway: Any = None  # in-process only: the lifespan's Gateway
    pid: int | None = None  # subprocess only


class _StateTap:
    """ASGI pass-through keeping the lifespan state seen by requests (the Gateway)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.state is None and scope["type"] == "http":
            self.state = scope.get("state")
        await self.app(scope, receive, send)


@contextlib.contextmanager
def router_in_thread(folder: Path, models_file: Path, max_in_flight: int = 256) -> Iterator[Router]:
    from intent_router.api.app import create_app
    from intent_router.embedding.encoder import Encoder

    settings = Settings(
        routes_dir=ROUTES_DIR,
        index_dir=folder / "index",
        models_file=models_file,
        build_on_start=True,
        cache_backend="off",  # measure dispatch: every request must reach the upstream
        max_in_flight=max_in_flight,
    )
    tap = _StateTap(create_app(settings, encoder=Encoder(settings.encoder)))
    with serve_in_thread(tap, startup_timeout_s=300) as url:
        httpx.get(f"{url}/healthz", timeout=30).raise_for_status()
        yield Router(url, "thread", (tap.state or {}).get("gateway"))


@contextlib.contextmanager
def router_in_subprocess(folder: Path, models_file: Path) -> Iterator[Router]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "intent_router.cli", "-q", "serve", "--routes", str(ROUTES_DIR),
        "--index", str(folder / "index"), "--models", str(models_file), "--build",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    log_path = folder / "router.log"
    with log_path.open("wb") as log:
        env = {**os.environ, "INTENT_ROUTER_CACHE_BACKEND": "off"}  # measure dispatch alone
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise SystemExit(f"router did not start ({' '.join(cmd)}):\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                time.sleep(0.2)
            yield Router(url, "subprocess", pid=proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# -- requests -----------------------------------------------------------------------------


@dataclass
class Result:
    status: int  # 0: no HTTP answer (exception)
    seconds: float
    model: str | None = None  # the answering model (x-intent-router-model)
    route: str | None = None
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # x_router
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.text.strip())

    @property
    def attempts(self) -> list[dict[str, Any]]:
        return list(self.meta.get("attempts", []))


async def post_chat(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Result:
    t0 = time.perf_counter()
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        return Result(0, time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - t0
    try:
        data = response.json()
        text = data["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        data, text = {}, ""
    return Result(
        response.status_code,
        seconds,
        model=response.headers.get("x-intent-router-model"),
        route=response.headers.get("x-intent-router-route"),
        text=text,
        meta=data.get("x_router", {}) if isinstance(data, dict) else {},
        error="" if response.status_code == 200 else response.text[:200],
    )


def chat_body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 128}


class BreakerWatch:
    """Breaker transitions: exact via a listener in-process, plus ``/metrics`` readings."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.transitions: list[tuple[float, str, str, str]] = []
        if router.gateway is not None:
            router.gateway.runtime.dispatcher.breakers.add_listener(self._on_change)

    def _on_change(self, name: str, old: Any, new: Any) -> None:
        self.transitions.append((time.monotonic(), name, str(old.value), str(new.value)))

    async def gauges(self, client: httpx.AsyncClient) -> dict[str, bool]:
        """Model → breaker not closed (open or half-open), from ``/metrics``."""
        text = (await client.get(f"{self.router.url}/metrics")).text
        return {m: float(v) > 0 for m, v in _GAUGE.findall(text)}

    async def poll(self, client: httpx.AsyncClient, stop: asyncio.Event) -> Counter[str]:
        """Count gauge flips closed → open per model until ``stop`` (10 Hz)."""
        opened: Counter[str] = Counter()
        last: dict[str, bool] = {}
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                now = await self.gauges(client)
                opened.update(m for m, is_open in now.items() if is_open and not last.get(m))
                last = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        return opened


# -- phase 1: overhead --------------------------------------------------------------------


async def phase_overhead(
    client: httpx.AsyncClient, router: Router, fake: FakeUpstream, args: argparse.Namespace
) -> dict[str, Any]:
    routed_url = f"{router.url}/v1/chat/completions"
    direct_url = f"{fake.openai_base}/chat/completions"
    routed_body = chat_body(PINNED, OVERHEAD_QUERY)
    direct_body = chat_body(MODELS[PINNED][1], OVERHEAD_QUERY)
    rng = random.Random(args.seed)
    times: dict[str, list[float]] = {"router": [], "direct": [], "floor": []}
    layers: dict[str, list[float]] = {"edge": [], "chain": [], "hop": []}
    failures = 0

    async def router_arm(sample: dict[str, float]) -> float:
        nonlocal failures
        r = await post_chat(client, routed_url, routed_body)
        if not r.ok or r.model != PINNED or len(r.attempts) != 1:
            failures += 1
        else:  # the dispatcher's own timings, for the layer split
            sample["dispatch"] = r.meta["latency_ms"]
            sample["attempt"] = r.attempts[0]["latency_ms"]
        return r.seconds

    async def direct_arm(sample: dict[str, float]) -> float:
        nonlocal failures
        r = await post_chat(client, direct_url, direct_body)
        failures += not r.ok
        return r.seconds

    async def floor_arm(sample: dict[str, float]) -> float:
        t0 = time.perf_counter()
        (await client.get(f"{router.url}/healthz")).raise_for_status()
        return time.perf_counter() - t0

    arms: dict[str, Callable[[dict[str, float]], Awaitable[float]]] = {
        "router": router_arm, "direct": direct_arm, "floor": floor_arm,
    }  # fmt: skip
    fake.latency_ms = args.latency_ms
    deadline = time.monotonic() + args.overhead_timeout_s
    rounds = 0
    for i in range(args.warmup + args.overhead_requests):
        if time.monotonic() > deadline:
            break
        order = list(arms)
        rng.shuffle(order)
        sample: dict[str, float] = {}
        for name in order:
            sample[name] = await arms[name](sample) * 1000
        if i < args.warmup:
            continue
        rounds += 1
        for name in arms:
            times[name].append(sample[name])
        if "dispatch" in sample:
            layers["edge"].append(sample["router"] - sample["dispatch"])
            layers["chain"].append(sample["dispatch"] - sample["attempt"])
            layers["hop"].append(sample["attempt"] - sample["direct"])
    diffs = [r - d for r, d in zip(times["router"], times["direct"], strict=True)]
    out: dict[str, Any] = {"rounds": rounds, "failures": failures}
    for name, values in times.items():
        out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = pct(values, 50), pct(values, 95)
    out["overhead_p50_ms"], out["overhead_p95_ms"] = pct(diffs, 50), pct(diffs, 95)
    out["pct_diff_p50_ms"] = out["router_p50_ms"] - out["direct_p50_ms"]
    out["pct_diff_p95_ms"] = out["router_p95_ms"] - out["direct_p95_ms"]
    out["layers_p50_ms"] = {name: pct(values, 50) for name, values in layers.items()}
    out["layers_p50_ms"]["floor_healthz"] = out["floor_p50_ms"]
    return out


def report_overhead(o: dict[str, Any], target_ms: float) -> None:
    print(f"\n== 1. router overhead ({o['rounds']} interleaved rounds, failures {o['failures']})")
    labels = {"router": "router (pinned)", "direct": "direct to fake", "floor": "GET /healthz"}
    for name, label in labels.items():
        p50, p95 = o[f"{name}_p50_ms"], o[f"{name}_p95_ms"]
        print(f"  {label:<18} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")
    verdict = "OK" if o["overhead_p50_ms"] <= target_ms else f"ABOVE the {target_ms} ms target"
    print(
        f"  overhead (paired router - direct): p50 {o['overhead_p50_ms']:.2f} ms, "
        f"p95 {o['overhead_p95_ms']:.2f} ms  [{verdict}]"
    )
    print(
        f"  difference of percentiles:         p50 {o['pct_diff_p50_ms']:.2f} ms, "
        f"p95 {o['pct_diff_p95_ms']:.2f} ms"
    )
    layers = o["layers_p50_ms"]
    print(
        "  layers (p50): edge {edge:.2f} ms (HTTP server + FastAPI + JSON in/out; GET /healthz "
        "alone {floor_healthz:.2f} ms), chain walk {chain:.2f} ms, hop {hop:.2f} ms "
        "(adapter + router's httpx vs the direct call)".format(**layers)
    )


# -- phase 2: load ------------------------------------------------------------------------


def load_queries(seed: int) -> list[str]:
    lines = QUERIES_FILE.read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["text"] for line in lines if line.strip()]
    random.Random(seed).shuffle(queries)
    return queries


async def phase_load(
    client: httpx.AsyncClient,
    router: Router,
    fake: FakeUpstream,
    watch: BreakerWatch,
    flaky: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    queries = load_queries(args.seed)
    url = f"{router.url}/v1/chat/completions"
    upstream_ids = {name: MODELS[name][1] for name in MODELS}
    before = {name: fake.calls(uid) for name, uid in upstream_ids.items()}
    n_transitions = len(watch.transitions)
    fake.latency_ms = args.load_latency_ms
    fake.chaos(
        p_503=args.p503, p_429=args.p429, seed=args.seed, retry_after=args.retry_after,
        models=[upstream_ids[m] for m in flaky],
    )  # fmt: skip
    results: list[Result] = []
    issued = 0
    deadline = time.monotonic() + args.load_timeout_s

    async def worker() -> None:
        nonlocal issued
        while issued < args.requests and time.monotonic() < deadline:
            i, issued = issued, issued + 1
            results.append(
                await post_chat(client, url, chat_body("auto", queries[i % len(queries)]))
            )

    stop = asyncio.Event()
    poller = asyncio.create_task(watch.poll(client, stop))
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    finally:
        seconds = time.perf_counter() - t0
        stop.set()
        gauge_opens = await poller
        fake.chaos()  # chaos off
    calls = {name: fake.calls(uid) - before[name] for name, uid in upstream_ids.items()}
    outcomes: Counter[str] = Counter()
    for r in results:
        for a in r.attempts:
            key = a["outcome"] if a["outcome"] != "skipped" else f"skipped: {a['reason']}"
            outcomes[key] += 1
    ok = [r for r in results if r.ok]
    lost = [r for r in results if not r.ok]
    transitions = watch.transitions[n_transitions:]
    return {
        "requests": args.requests,
        "sent": len(results),
        "ok": len(ok),
        "lost": args.requests - len(ok),
        "lost_examples": sorted({f"{r.status} {r.error}"[:160] for r in lost})[:5],
        "seconds": seconds,
        "rps": len(results) / seconds if seconds else 0.0,
        "p50_ms": pct([r.seconds * 1000 for r in ok], 50),
        "p95_ms": pct([r.seconds * 1000 for r in ok], 95),
        "p99_ms": pct([r.seconds * 1000 for r in ok], 99),
        "routes": Counter(r.route or "-" for r in ok),
        "answered_by": Counter(r.model or "-" for r in ok),
        "first_try": sum(1 for r in ok if len(r.attempts) == 1),
        "upstream_calls": calls,
        "attempts": outcomes,
        "transitions": Counter(f"{old}->{new}" for _, _, old, new in transitions),
        "opened": Counter(name for _, name, _, new in transitions if new == "open"),
        "gauge_opens": gauge_opens,
    }


def report_load(
    d: dict[str, Any], flaky: list[str], healthy: list[str], args: argparse.Namespace
) -> None:
    print(
        f"\n== 2. load: {d['requests']} requests, {args.concurrency} concurrent, model auto; "
        f"flaky (503 {args.p503:.0%}, 429 {args.p429:.0%}, Retry-After {args.retry_after}): "
        f"{', '.join(flaky)}; healthy: {', '.join(healthy)}"
    )
    print(
        f"  sent {d['sent']}, ok {d['ok']}, lost {d['lost']} in {d['seconds']:.1f} s "
        f"({d['rps']:.0f} req/s); latency p50 {d['p50_ms']:.1f} ms, p95 {d['p95_ms']:.1f} ms, "
        f"p99 {d['p99_ms']:.1f} ms"
    )
    for example in d["lost_examples"]:
        print(f"  lost: {example}")
    print(f"  routes: {dict(d['routes'].most_common())}")
    print(f"  answered by: {dict(d['answered_by'].most_common())}; first try: {d['first_try']}")
    print(f"  upstream calls: {d['upstream_calls']} (total {sum(d['upstream_calls'].values())})")
    print(f"  attempts by outcome: {dict(d['attempts'].most_common())}")
    if d["transitions"]:
        print(
            f"  breaker transitions: {dict(d['transitions'])}; opens by model {dict(d['opened'])}"
        )
    print(f"  /metrics (10 Hz) saw breakers open: {dict(d['gauge_opens']) or 'never'}")


# -- phase 3: breaker ---------------------------------------------------------------------


async def phase_breaker(
    client: httpx.AsyncClient,
    router: Router,
    fake: FakeUpstream,
    watch: BreakerWatch,
    args: argparse.Namespace,
) -> dict[str, Any]:
    url = f"{router.url}/v1/chat/completions"
    uid = MODELS[DEAD][1]
    cooldown = args.cooldown_s
    fake.latency_ms = 0.0
    body = chat_body(DEAD, "write a python function that reverses a linked list")
    out: dict[str, Any] = {"model": DEAD}
    failed: list[str] = []

    async def send(n: int, *, concurrent: bool = False) -> list[Result]:
        if concurrent:
            return list(await asyncio.gather(*(post_chat(client, url, body) for _ in range(n))))
        return [await post_chat(client, url, body) for _ in range(n)]

    def is_open(gauges: dict[str, bool]) -> bool:
        return gauges.get(DEAD, False)

    # Settle: the load may have left the breaker open or with failures counted.
    if is_open(await watch.gauges(client)):
        await asyncio.sleep(cooldown + 0.1)
    settle = await send(args.half_open_probes)  # half-open closes after that many successes
    if settle[-1].model != DEAD or is_open(await watch.gauges(client)):
        failed.append("could not start from a closed breaker")

    # Trip it.
    n_transitions = len(watch.transitions)
    fake.always(uid, Fault.http(503))
    c0 = fake.calls(uid)
    trip: list[Result] = []
    t_sent = t_recv = time.monotonic()
    for _ in range(args.minimum_calls * 4):
        t_sent = time.monotonic()
        trip += await send(1)
        t_recv = time.monotonic()
        if is_open(await watch.gauges(client)):
            break
    else:
        failed.append("breaker never opened")
    out["trip_requests"], out["trip_calls"] = len(trip), fake.calls(uid) - c0
    # The breaker opened between t_sent and t_recv; stay well inside its cool-down.
    c_open = fake.calls(uid)
    during: list[Result] = []
    while len(during) < args.breaker_requests and time.monotonic() - t_sent < 0.6 * cooldown:
        during += await send(1)
    out["open_requests"] = len(during)
    out["open_calls"] = fake.calls(uid) - c_open
    out["open_answered"] = sum(1 for r in during if r.ok and r.model != DEAD)
    if not is_open(await watch.gauges(client)):
        failed.append("breaker not open during its cool-down")

    # After the cool-down: a burst; exactly half_open_probes probes may reach it.
    await asyncio.sleep(max(0.0, t_recv + cooldown + 0.1 - time.monotonic()))
    c_probe = fake.calls(uid)
    burst = await send(args.probe_burst, concurrent=True)
    t_probe = time.monotonic()
    out["probe_burst"] = len(burst)
    out["probe_calls"] = fake.calls(uid) - c_probe
    out["probe_answered"] = sum(1 for r in burst if r.ok)
    out["reopened_after_failed_probe"] = is_open(await watch.gauges(client))

    # Revive; after the next cool-down the probe succeeds and calls flow again.
    fake.always(uid, None)
    await asyncio.sleep(max(0.0, t_probe + cooldown + 0.1 - time.monotonic()))
    c_revived = fake.calls(uid)
    revived = await send(5)
    out["revived_calls"] = fake.calls(uid) - c_revived
    out["revived_answered_by_it"] = sum(1 for r in revived if r.ok and r.model == DEAD)
    out["closed_after_revival"] = not is_open(await watch.gauges(client))
    out["lost"] = sum(1 for r in [*trip, *during, *burst, *revived] if not r.ok)
    out["transitions"] = [
        f"{old}->{new}" for _, name, old, new in watch.transitions[n_transitions:] if name == DEAD
    ]

    if out["open_calls"]:
        failed.append(
            f"{out['open_calls']} calls reached the dead model while its breaker was open"
        )
    # Up to half_open_probes probes; the first failed probe reopens it, so maybe fewer.
    expected_probes = min(args.half_open_probes, args.probe_burst)
    if not 1 <= out["probe_calls"] <= expected_probes:
        failed.append(
            f"{out['probe_calls']} calls in the half-open burst (expected 1..{expected_probes})"
        )
    if not out["reopened_after_failed_probe"]:
        failed.append("breaker not open again after the failed probe")
    if out["revived_calls"] != len(revived) or out["revived_answered_by_it"] != len(revived):
        failed.append("calls did not flow again after revival")
    if not out["closed_after_revival"]:
        failed.append("breaker not closed after revival")
    out["failed_checks"] = failed
    return out


def report_breaker(b: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"\n== 3. breaker on {b['model']} (failure_rate {args.failure_rate} over >= "
        f"{args.minimum_calls} calls, cool-down {args.cooldown_s} s, "
        f"{args.half_open_probes} half-open probes, max_retries {args.max_retries})"
    )
    print(f"  opened after {b['trip_requests']} requests / {b['trip_calls']} upstream calls")
    print(
        f"  while open: {b['open_requests']} requests, {b['open_calls']} calls reached it, "
        f"{b['open_answered']} answered by the chain's next model"
    )
    print(
        f"  after the cool-down: burst of {b['probe_burst']} concurrent requests → "
        f"{b['probe_calls']} probe call(s), {b['probe_answered']} answered; "
        f"re-opened after the failed probe: {b['reopened_after_failed_probe']}"
    )
    print(
        f"  revived: {b['revived_calls']} calls reached it, {b['revived_answered_by_it']} "
        f"answered by it; closed: {b['closed_after_revival']}; requests lost: {b['lost']}"
    )
    if b["transitions"]:
        print(f"  transitions: {' '.join(b['transitions'])}")
    print(f"  checks: {'all passed' if not b['failed_checks'] else '; '.join(b['failed_checks'])}")


# -- main ---------------------------------------------------------------------------------


async def run(router: Router, fake: FakeUpstream, args: argparse.Namespace) -> dict[str, Any]:
    flaky, healthy = flaky_models()
    watch = BreakerWatch(router)
    limits = httpx.Limits(
        max_connections=args.concurrency + 8, max_keepalive_connections=args.concurrency + 8
    )
    timeout = httpx.Timeout(args.request_timeout_s)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        overhead = await phase_overhead(client, router, fake, args)
        report_overhead(overhead, args.target_ms)
        load = await phase_load(client, router, fake, watch, flaky, args)
        report_load(load, flaky, healthy, args)
        breaker = await phase_breaker(client, router, fake, watch, args)
        report_breaker(breaker, args)
        queries = load_queries(args.seed)
        degraded = await phases.phase_degraded(
            client, router.url, fake, queries, post_chat, chat_body, args
        )
        phases.report_degraded(degraded, args)
        dead_ids = {name: MODELS[name][1] for name in flaky}
        dead = await phases.phase_dead_primaries(
            client, router.url, fake, queries, dead_ids, post_chat, chat_body, args
        )
        phases.report_dead(dead)
    return {
        "overhead_p50_ms": round(overhead["overhead_p50_ms"], 3),
        "overhead_p95_ms": round(overhead["overhead_p95_ms"], 3),
        "load_requests": load["requests"],
        "load_ok": load["ok"],
        "load_lost": load["lost"],
        "breaker_open_calls": breaker["open_calls"],
        "router_mode": router.mode,
        "router_p50_ms": round(overhead["router_p50_ms"], 3),
        "direct_p50_ms": round(overhead["direct_p50_ms"], 3),
        "overhead_pct_diff_p50_ms": round(overhead["pct_diff_p50_ms"], 3),
        "overhead_edge_p50_ms": round(overhead["layers_p50_ms"]["edge"], 3),
        "overhead_chain_p50_ms": round(overhead["layers_p50_ms"]["chain"], 3),
        "overhead_hop_p50_ms": round(overhead["layers_p50_ms"]["hop"], 3),
        "healthz_p50_ms": round(overhead["floor_p50_ms"], 3),
        "load_p50_ms": round(load["p50_ms"], 2),
        "load_p95_ms": round(load["p95_ms"], 2),
        "load_seconds": round(load["seconds"], 2),
        "upstream_calls": sum(load["upstream_calls"].values()),
        "retries": load["attempts"].get("retried", 0),
        "failovers": load["ok"] - load["first_try"],
        "load_breaker_opens": dict(load["opened"] or load["gauge_opens"]),
        "breaker_probe_calls": breaker["probe_calls"],
        "breaker_checks_passed": not breaker["failed_checks"],
        "degraded_requests": degraded["requests"],
        "degraded_ok": degraded["ok"],
        "degraded_answered_pct": round(degraded["answered_pct"], 2),
        "degraded_p50_ms": round(degraded["p50_ms"], 2),
        "degraded_p95_ms": round(degraded["p95_ms"], 2),
        "degraded_p99_ms": round(degraded["p99_ms"], 2),
        "degraded_calls_per_request": round(degraded["calls_per_request"], 3),
        "dead_requests": dead["requests"],
        "dead_ok": dead["ok"],
        "dead_calls_in_tail_max": dead["max_dead_calls_in_tail"],
        "dead_calls_in_tail_total": sum(dead["dead_calls_in_tail"].values()),
        "dead_tail_seconds": round(dead["tail_seconds"], 1),
        "dead_probe_bound": dead["probe_bound"],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000, help="load phase requests")
    p.add_argument("--concurrency", type=int, default=64, help="load phase requests in flight")
    p.add_argument("--router", choices=["thread", "subprocess"], default=DEFAULT_ROUTER)
    p.add_argument("--overhead-requests", type=int, default=500, help="rounds per arm")
    p.add_argument("--warmup", type=int, default=100, help="overhead rounds not counted")
    p.add_argument("--target-ms", type=float, default=3.0, help="overhead p50 target")
    p.add_argument("--latency-ms", type=float, default=0.0, help="fake latency, overhead phase")
    p.add_argument("--load-latency-ms", type=float, default=20.0, help="fake latency, load")
    p.add_argument("--p503", type=float, default=0.3)
    p.add_argument("--p429", type=float, default=0.1)
    p.add_argument("--retry-after", type=float, default=0.05, help="seconds, sent with faults")
    p.add_argument("--max-retries", type=int, default=2, help="per model in the models file")
    p.add_argument("--timeout-s", type=float, default=20.0, help="per attempt, models file")
    p.add_argument("--deadline-s", type=float, default=60.0, help="per request, models file")
    p.add_argument("--failure-rate", type=float, default=0.5, help="breaker: share failed")
    p.add_argument("--minimum-calls", type=int, default=10, help="breaker: calls to judge")
    p.add_argument("--window-s", type=float, default=30.0, help="breaker: sliding window")
    p.add_argument("--half-open-probes", type=int, default=3)
    p.add_argument("--cooldown-s", type=float, default=3.0)
    p.add_argument("--dead-requests", type=int, default=1000, help="dead-primaries phase")
    p.add_argument("--dead-tail", type=int, default=800, help="dead calls counted over these")
    p.add_argument("--shed-max-in-flight", type=int, default=8, help="0 skips the phase")
    p.add_argument("--shed-requests", type=int, default=64)
    p.add_argument("--shed-latency-ms", type=float, default=100.0)
    p.add_argument("--drain-requests", type=int, default=32, help="0 skips the SIGTERM phase")
    p.add_argument("--breaker-requests", type=int, default=20, help="sent while open")
    p.add_argument("--probe-burst", type=int, default=8, help="concurrent after the cool-down")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--fake-nodelay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="work around the fake's missing TCP_NODELAY (see fake_nodelay)",
    )
    p.add_argument("--request-timeout-s", type=float, default=30.0)
    p.add_argument("--overhead-timeout-s", type=float, default=120.0)
    p.add_argument("--load-timeout-s", type=float, default=240.0)
    args = p.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.overhead_requests < 1:
        p.error("--requests, --concurrency and --overhead-requests must be >= 1")
    return args


def extra_routers(
    folder: Path, models_file: Path, fake: FakeUpstream, args: argparse.Namespace
) -> dict[str, Any]:
    """The phases that need a router of their own: shedding (small cap) and SIGTERM drain."""
    out: dict[str, Any] = {}
    body = chat_body("local-llama", OVERHEAD_QUERY)
    if args.shed_max_in_flight > 0:
        with router_in_thread(folder, models_file, args.shed_max_in_flight) as small:
            shed = asyncio.run(
                phases.phase_shedding(
                    small.url, fake, post_chat, body, args.shed_latency_ms, args.shed_requests
                )
            )
        phases.report_shedding(shed, args.shed_max_in_flight)
        out.update(
            shed_requests=shed["requests"], shed_admitted=shed["admitted"],
            shed_503=shed["shed"], shed_with_retry_after=shed["shed_with_retry_after"],
            shed_admitted_p95_ms=round(shed["admitted_p95_ms"], 2),
            shed_admitted_p95_over_upstream=round(shed["admitted_p95_over_upstream"], 2),
        )  # fmt: skip
    if args.drain_requests > 0:
        with router_in_subprocess(folder, models_file) as proc:
            assert proc.pid is not None
            drain = asyncio.run(
                phases.phase_drain(proc.url, proc.pid, fake, body, args.drain_requests, 1000.0)
            )
        phases.report_drain(drain)
        out.update(drain_in_flight=drain["in_flight_at_sigterm"], drain_answered=drain["answered"])
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp,
        FakeUpstream(record_requests=False) as fake,
    ):
        folder = Path(tmp)
        nodelay = args.fake_nodelay and fake_nodelay(fake)
        models_file = write_models(folder, fake, args)
        serve = router_in_thread if args.router == "thread" else router_in_subprocess
        print(
            f"bench_dispatch: router in {args.router} mode, fake upstream at {fake.url} "
            f"(TCP_NODELAY work-around {'on' if nodelay else 'off'})"
        )
        with serve(folder, models_file) as router:
            print(f"  router at {router.url} (set-up {time.monotonic() - started:.1f} s)")
            summary = asyncio.run(run(router, fake, args))
        summary.update(extra_routers(folder, models_file, fake, args))
    summary["total_seconds"] = round(time.monotonic() - started, 1)
    print(f"\ntotal {summary['total_seconds']} s")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
