"""Latency and throughput of ``POST /route`` against the bare encoder, in one run.

Setup (all in this one process, loopback only):

* one :class:`~intent_router.embedding.encoder.Encoder`, loaded once and shared by the bare
  measurements and the server (so both run the very same model object);
* the real app, ``create_app(Settings(routes_dir=routes/, index_dir=<temp>,
  models_file=None, build_on_start=True), encoder=encoder)``, under a real uvicorn server in
  a background thread (``intent_router.testing.server.serve_in_thread``) on 127.0.0.1;
* queries: the texts of ``tests/data/llm_requests.jsonl`` plus the shipped route
  utterances, shuffled with a fixed seed (varied lengths, like real LLM traffic).

The machine has 2 cores shared with other work, so every figure that matters is a ratio
taken within this run, and the two latencies are *paired*: after warm-up, each sample
times one bare ``Encoder.encode([q])`` and then one ``POST /route`` for the same query,
so drifting background load hits both alike (the server is idle during the bare call).

Throughput: 1, 8 and 32 concurrent clients, each looping for ``--duration`` seconds on
one ``httpx.AsyncClient`` (keep-alive, one connection per client) in a single asyncio
thread, so the load generator takes as little CPU as it can from the CPU-bound server.

Layer timings printed to explain the figures (not in the JSON): ``GET /healthz`` (HTTP +
JSON + dependency floor), ``Matcher.decide`` on one vector, ``RouterService.route`` without
HTTP (batcher queue + worker thread + encode + match) paired with the bare encoder, and
the bare encoder on 1, 8 and 32 queries per call (the ceiling any micro-batching can
reach), plus 32 per call in chunks of 8 (``batch_size=8``: sentence-transformers sorts by
length, so less padding).

    python3 scripts/bench_latency.py [--routes routes] [--data tests/data/llm_requests.jsonl]
                                     [--samples 300] [--duration 8]

The last line printed is one JSON object: bare_encode_p50_ms, route_p50_ms, route_p95_ms,
p50_ratio, qps_1, qps_8, qps_32, throughput_ratio (= qps_32 / qps_1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import DEFAULT_MODEL, Encoder
from intent_router.embedding.index import load_index
from intent_router.routing.loader import load_routes
from intent_router.routing.matcher import Matcher
from intent_router.service import RouterService
from intent_router.testing.server import serve_in_thread

REPO = Path(__file__).resolve().parents[1]
TARGET_P50_RATIO = 1.25
TARGET_THROUGHPUT_RATIO = 4.0


def main() -> int:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    encoder = Encoder(args.encoder or DEFAULT_MODEL)
    queries = _queries(Path(args.routes), Path(args.data))
    print(f"{len(queries)} distinct queries; encoder {encoder.id}")
    for query in queries[:20]:  # warm-up: first calls allocate and tune kernels
        encoder.encode([query])

    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        settings = Settings(
            routes_dir=Path(args.routes),
            index_dir=Path(tmp),
            models_file=None,
            build_on_start=True,
        )
        app = create_app(settings, encoder=encoder)
        with serve_in_thread(app) as base_url:
            print(f"server up at {base_url} (index built at start-up)")
            with httpx.Client(base_url=base_url, timeout=60) as client:
                for query in queries[:20]:
                    _post(client, query)
                bare, route = _paired(encoder, client, queries, args.samples)
                health = _timed(lambda: client.get("/healthz").raise_for_status(), 100)
            matcher_ms = _matcher_ms(settings, encoder, queries[0])
            service_pairs = asyncio.run(_service_paired(settings, encoder, queries, 100))
            qps = {
                c: asyncio.run(_throughput(base_url, queries, c, args.duration)) for c in (1, 8, 32)
            }
            with httpx.Client(base_url=base_url, timeout=60) as client:
                metrics = client.get("/metrics").text
        ceiling = {
            (size, chunk): _encode_rate(encoder, queries, size, chunk)
            for size, chunk in ((1, 1), (8, 8), (32, 32), (32, 8))
        }

    figures = {
        "bare_encode_p50_ms": round(_pct(bare, 50), 2),
        "route_p50_ms": round(_pct(route, 50), 2),
        "route_p95_ms": round(_pct(route, 95), 2),
        "p50_ratio": round(_pct(route, 50) / _pct(bare, 50), 3),
        "qps_1": round(qps[1], 1),
        "qps_8": round(qps[8], 1),
        "qps_32": round(qps[32], 1),
        "throughput_ratio": round(qps[32] / qps[1], 2),
    }
    _report(figures, bare, route, health, matcher_ms, service_pairs, ceiling, metrics)
    print(json.dumps(figures))
    return 0


def _queries(routes_dir: Path, data: Path) -> list[str]:
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines() if line.strip()]
    for route in load_routes(routes_dir).routes:
        texts.extend(route.utterances)
    unique = list(dict.fromkeys(texts))
    random.Random(7).shuffle(unique)
    return unique


def _post(client: httpx.Client, query: str) -> dict[str, Any]:
    response = client.post("/route", json={"query": query})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _paired(
    encoder: Encoder, client: httpx.Client, queries: list[str], samples: int
) -> tuple[list[float], list[float]]:
    """``samples`` pairs of (bare encode, POST /route) times in ms for the same query."""
    bare, route = [], []
    for i in range(samples):
        query = queries[(i + 20) % len(queries)]
        started = time.perf_counter()
        encoder.encode([query])
        bare.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        _post(client, query)
        route.append((time.perf_counter() - started) * 1000)
    return bare, route


def _timed(call: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _matcher_ms(settings: Settings, encoder: Encoder, query: str) -> float:
    """p50 of ``Matcher.decide`` on one query vector, on the index the server built."""
    routes = load_routes(settings.routes_dir)
    matcher = Matcher(routes, load_index(settings.index_dir))
    vector = encoder.encode([query])
    return _pct(_timed(lambda: matcher.decide(vector), 200), 50)


async def _service_paired(
    settings: Settings, encoder: Encoder, queries: list[str], samples: int
) -> tuple[list[float], list[float]]:
    """Paired (bare encode, ``RouterService.route``) ms: the service layer without HTTP."""
    service = RouterService.from_settings(settings, encoder)
    await service.start()
    bare, routed = [], []
    try:
        for i in range(samples):
            query = queries[(i + 400) % len(queries)]
            started = time.perf_counter()
            encoder.encode([query])
            bare.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await service.route(query)
            routed.append((time.perf_counter() - started) * 1000)
    finally:
        await service.aclose()
    return bare, routed


def _encode_rate(encoder: Encoder, queries: list[str], size: int, chunk: int) -> float:
    """Queries/s of the bare encoder on ``size`` queries per call, ``batch_size=chunk``."""
    done, started, i = 0, time.perf_counter(), 0
    while time.perf_counter() - started < 3 or done < 2 * size:
        batch = [queries[(i + k) % len(queries)] for k in range(size)]
        encoder.encode(batch, batch_size=chunk)
        done, i = done + size, i + size
    return done / (time.perf_counter() - started)


async def _throughput(base_url: str, queries: list[str], clients: int, duration: float) -> float:
    """Completed ``POST /route`` per second with ``clients`` concurrent looping clients."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        # warm every connection first, so connection set-up is not counted
        await asyncio.gather(*(client.post("/route", json={"query": q}) for q in queries[:clients]))
        counts = [0] * clients
        deadline = time.perf_counter() + duration

        async def loop(worker: int) -> None:
            i = worker * 997
            while time.perf_counter() < deadline:
                response = await client.post("/route", json={"query": queries[i % len(queries)]})
                response.raise_for_status()
                counts[worker] += 1
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(w) for w in range(clients)))
        return sum(counts) / (time.perf_counter() - started)


def _pct(values: list[float], q: float) -> float:
    if q == 50:
        return statistics.median(values)
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _report(
    figures: dict[str, Any],
    bare: list[float],
    route: list[float],
    health: list[float],
    matcher_ms: float,
    service_pairs: tuple[list[float], list[float]],
    ceiling: dict[tuple[int, int], float],
    metrics: str,
) -> None:
    print(f"\none query, {len(bare)} paired samples (ms):")
    print(f"  bare Encoder.encode([q])  p50 {_pct(bare, 50):7.2f}  p95 {_pct(bare, 95):7.2f}")
    print(f"  POST /route               p50 {_pct(route, 50):7.2f}  p95 {_pct(route, 95):7.2f}")
    print(f"  GET /healthz (HTTP floor) p50 {_pct(health, 50):7.2f}")
    print(f"  Matcher.decide(1 vector)  p50 {matcher_ms:7.3f}")
    s_bare, s_route = service_pairs
    print(
        f"  RouterService.route (no HTTP) p50 {_pct(s_route, 50):7.2f} against bare "
        f"{_pct(s_bare, 50):7.2f} in {len(s_bare)} pairs: ratio "
        f"{_pct(s_route, 50) / _pct(s_bare, 50):.3f}"
    )
    overhead = _pct(route, 50) - _pct(bare, 50)
    print(
        f"  p50 ratio route/bare {figures['p50_ratio']:.3f} (target <= {TARGET_P50_RATIO});"
        f" overhead {overhead:.2f} ms"
    )
    print("\nthroughput (requests/s):")
    for c in (1, 8, 32):
        print(f"  {c:>2} clients  {figures[f'qps_{c}']:8.1f}")
    print(f"  ratio 32/1 {figures['throughput_ratio']:.2f} (target >= {TARGET_THROUGHPUT_RATIO})")
    print("\nbare encoder ceiling (queries/s; queries per call, batch_size):")
    for (size, chunk), rate in ceiling.items():
        print(
            f"  {size:>2} per call, batch_size {chunk:>2}  {rate:8.1f}"
            f"  ({rate / ceiling[(1, 1)]:.2f}x one query)"
        )
    print("\nserver micro-batcher:")
    for line in metrics.splitlines():
        if line.startswith("intent_router_encoder_batch"):
            print(f"  {line}")
    print()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=Path, default=REPO / "routes")
    parser.add_argument("--data", type=Path, default=REPO / "tests/data/llm_requests.jsonl")
    parser.add_argument("--encoder", default=None, help=f"default: {DEFAULT_MODEL}")
    parser.add_argument("--samples", type=int, default=300, help="paired latency samples")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load level")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
