"""Latency and throughput of ``POST /route`` against the bare encoder, in one run.

Setup (loopback only):

* the router runs as users run it, in its own process: ``intent-router serve --models none``
  on the shipped ``routes/`` with a fresh index folder (built at start-up);
* this process loads the same encoder (same model, same backend) for the bare figures;
* the client is ``http.client`` with keep-alive (one connection per client thread): a thin
  client, so the figures are the router's and not a client library's;
* queries: ``tests/data/llm_requests.jsonl`` plus the shipped route utterances, shuffled
  with a fixed seed (varied lengths, like real LLM traffic).

The machine has 2 cores shared with other work, so the figures that matter are ratios
taken in this run, and the two latencies are *paired*: each sample times one bare
``Encoder.encode([q])`` and then one ``POST /route`` for the same query (the server is
idle during the bare call). Throughput: 1, 8 and 32 client threads, each looping for
``--duration`` seconds.

    python3 scripts/bench_latency.py [--routes routes] [--data tests/data/llm_requests.jsonl]
                                     [--samples 300] [--duration 8]

The last line printed is one JSON object: bare_encode_p50_ms, route_p50_ms, route_p95_ms,
p50_ratio, qps_1, qps_8, qps_32, throughput_ratio (= qps_32 / qps_1) of the first encoder of
``--encoders`` (default ``minilm``), then per encoder NAME: NAME_bare_encode_p50_ms,
NAME_route_p50_ms, NAME_p50_ratio, NAME_qps_32 and NAME_route_p50_vs_FIRST (its ``/route``
p50 over the first encoder's, same run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from intent_router.embedding.choice import load_encoder
from intent_router.testing.server import serve_in_subprocess

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    args = _parser().parse_args()
    queries = _queries(args.routes, args.data)
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    results = {name: measure(name, args, queries) for name in names}
    first = results[names[0]]
    result = dict(first)  # the first encoder's figures keep the historical keys
    for name, figures in results.items():
        for key in ("bare_encode_p50_ms", "route_p50_ms", "p50_ratio", "qps_32"):
            result[f"{name}_{key}"] = figures[key]
        result[f"{name}_route_p50_vs_{names[0]}"] = round(
            figures["route_p50_ms"] / first["route_p50_ms"], 3
        )
    print(json.dumps(result))
    return 0


def measure(name: str, args: argparse.Namespace, queries: list[str]) -> dict[str, float]:
    """One encoder: paired bare/``/route`` latencies and throughput; prints its report."""
    print(f"==== encoder {name}")
    encoder = load_encoder(name)
    with _router(args.routes, name) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for query in queries[:30]:  # warm-up: both paths, caches and allocator
            encoder.encode([query])
            _post(conn, query)
        bare, routed = [], []
        for i in range(args.samples):
            query = queries[i % len(queries)]
            t0 = time.perf_counter()
            encoder.encode([query])
            t1 = time.perf_counter()
            _post(conn, query)
            t2 = time.perf_counter()
            bare.append((t1 - t0) * 1000)
            routed.append((t2 - t1) * 1000)
        conn.close()
        qps = {n: _throughput(port, queries, n, args.duration) for n in (1, 8, 32)}
        metrics = _get(port, "/metrics")
    result = {
        "bare_encode_p50_ms": round(statistics.median(bare), 3),
        "route_p50_ms": round(statistics.median(routed), 3),
        "route_p95_ms": round(_pct(routed, 95), 3),
        "p50_ratio": round(statistics.median(routed) / statistics.median(bare), 3),
        "qps_1": round(qps[1], 1),
        "qps_8": round(qps[8], 1),
        "qps_32": round(qps[32], 1),
        "throughput_ratio": round(qps[32] / qps[1], 2),
    }
    print(f"bare encoder, one query: p50 {result['bare_encode_p50_ms']} ms "
          f"(p95 {_pct(bare, 95):.2f} ms) over {len(bare)} queries")  # fmt: skip
    print(f"POST /route, one client: p50 {result['route_p50_ms']} ms, "
          f"p95 {result['route_p95_ms']} ms -> {result['p50_ratio']}x bare")  # fmt: skip
    for n, rate in qps.items():
        print(f"throughput with {n:>2} clients: {rate:7.1f} requests/s ({rate / qps[1]:.2f}x)")
    print("server batching:")
    for line in metrics.splitlines():
        if line.startswith("intent_router_encoder_batch") and "_created" not in line:
            print("  " + line)
    return result


@contextmanager
def _router(routes: Path, encoder: str) -> Iterator[int]:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--routes", str(routes), "--index", tmp, "--models", "none", "--build"]
        args += ["--encoder", encoder]
        with serve_in_subprocess(args) as url:
            yield int(url.rsplit(":", 1)[1])


def _queries(routes: Path, data: Path) -> list[str]:
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines() if line.strip()]
    for path in sorted(routes.glob("*.yaml")):
        texts += yaml.safe_load(path.read_text())["utterances"]
    random.Random(7).shuffle(texts)
    return texts


def _post(conn: http.client.HTTPConnection, query: str) -> None:
    conn.request("POST", "/route", json.dumps({"query": query}),
                 {"content-type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"/route answered {response.status}: {body[:200]!r}")


def _get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _throughput(port: int, queries: list[str], clients: int, duration: float) -> float:
    counts = [0] * clients
    stop = time.monotonic() + duration

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = k * 97
        while time.monotonic() < stop:
            _post(conn, queries[i % len(queries)])
            counts[k] += 1
            i += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=Path, default=REPO / "routes")
    parser.add_argument("--data", type=Path, default=REPO / "tests/data/llm_requests.jsonl")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument(
        "--encoders",
        default="minilm",
        help="comma-separated encoder names, each measured against its own bare encoder "
        "(e.g. minilm,hybrid,use-m); the first is the reference for *_route_p50_vs_*",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
