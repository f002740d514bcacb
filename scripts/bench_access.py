"""What keys and budgets cost per request, and whether concurrent bursts overspend.

Three routers in this process on loopback, over one index and the fake upstream: open (no
keys), ``--keys FILE`` (keys, limits and budgets in memory, spend persisted beside the
file) and ``--keys-redis URL`` (all in a throwaway redis-server; two replicas). Requests
are pinned to one model with the cache off, so a request is authentication + reservation
+ dispatch + settle, and the open router is the baseline.

1. **Overhead**: ``--n`` requests per router, sent in turn (open, memory, Redis, open, …)
   so drift hits all three alike; p50/p95 latency and their ratios to the open router's
   (keys on: the key's lookup by hash, its limits, the reservation and the settle).
2. **Overspend**: ``--bursts`` bursts of 64 concurrent requests, each against a fresh key
   with a 0.50 USD budget, per ledger (Redis: the burst split over two replicas); the
   spend is read back from the ledger (memory: from the spend file) and compared with the
   budget. Overspend must be 0.

Prints a report and ends with ONE JSON line.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python scripts/bench_access.py [--n 300] [--bursts 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from intent_router.access.budget_memory import MemoryBudgetLedger, spend_file_for
from intent_router.access.budget_redis import RedisBudgetLedger
from intent_router.access.file_store import FileKeyStore
from intent_router.access.keys import KeySpec, KeyStore
from intent_router.access.redis_store import RedisKeyStore
from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.choice import DEFAULT_ENCODER, load_encoder
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream
from intent_router.testing.redis_server import redis_binary, running_redis
from intent_router.testing.server import serve_in_thread

MODEL = "cheap-general"
BUDGET = 0.50
BURST = 64
ROUTES = {
    "greeting": ["hello there", "good morning", "hi, how are you"],
    "weather": ["will it rain tomorrow", "what is the forecast", "is it sunny outside"],
}
BODY = {"model": MODEL, "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi there, how are you today"}]}  # fmt: skip


def write_config(folder: Path, fake: FakeUpstream) -> tuple[Path, Path]:
    routes = folder / "routes"
    routes.mkdir()
    for name, utterances in ROUTES.items():
        body = {"name": name, "utterances": utterances, "chain": [MODEL]}
        (routes / f"{name}.yaml").write_text(yaml.safe_dump(body))
    spec = {"provider": "openai", "base_url": fake.openai_base, "model": "gpt-up",
            "timeout_s": 10, "max_retries": 0,
            "price_per_mtok_input": 1000.0, "price_per_mtok_output": 2000.0}  # fmt: skip
    config = {"default_chain": [MODEL], "models": {MODEL: spec}, "deadline_s": 10}
    models = folder / "models.yaml"
    models.write_text(yaml.safe_dump(config))
    return routes, models


async def new_key(store: KeyStore, name: str, budget: float) -> str:
    _, secret = await store.create(KeySpec(name=name, budget_usd=budget, period="1d"))
    return secret


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latencies(urls: dict[str, str], keys: dict[str, str | None], n: int) -> dict[str, list[float]]:
    clients = {name: httpx.Client(base_url=url, timeout=10) for name, url in urls.items()}
    out: dict[str, list[float]] = {name: [] for name in urls}
    try:
        for i in range(n + 20):  # the first 20 of each warm up
            for name, client in clients.items():
                headers = {"authorization": f"Bearer {keys[name]}"} if keys[name] else {}
                t0 = time.perf_counter()
                reply = client.post("/v1/chat/completions", json=BODY, headers=headers)
                elapsed = time.perf_counter() - t0
                if reply.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {reply.status_code} {reply.text[:200]}")
                if i >= 20:
                    out[name].append(elapsed * 1000)
    finally:
        for client in clients.values():
            client.close()
    return out


async def burst(urls: list[str], secret: str) -> dict[str, int]:
    """64 requests at once over ``urls``; counts of answers by status."""
    headers = {"authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=BURST)) as c:
        replies = await asyncio.gather(*(
            c.post(f"{urls[i % len(urls)]}/v1/chat/completions", json=BODY, headers=headers)
            for i in range(BURST)
        ))  # fmt: skip
    counts: dict[str, int] = {}
    for reply in replies:
        counts[str(reply.status_code)] = counts.get(str(reply.status_code), 0) + 1
    return counts


@contextmanager
def servers(settings: list[Settings], encoder: Encoder) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(serve_in_thread(create_app(s, encoder=encoder))) for s in settings
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="timed requests per router")
    parser.add_argument("--bursts", type=int, default=3, help="bursts of 64 per ledger")
    args = parser.parse_args()
    started = time.perf_counter()
    binary = redis_binary()
    encoder = load_encoder(DEFAULT_ENCODER)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fake = stack.enter_context(FakeUpstream(record_requests=False))
        routes, models = write_config(folder, fake)
        base = {"routes_dir": routes, "index_dir": folder / "index", "models_file": models,
                "cache_backend": "off", "max_in_flight": 0}  # fmt: skip
        keys_file = folder / "keys.json"
        file_store = FileKeyStore(keys_file)
        redis = stack.enter_context(running_redis(binary)) if binary else None
        settings = {
            "open": Settings(**base, build_on_start=True),
            "memory": Settings(**base, keys_file=keys_file),
        }
        if redis is not None:
            settings["redis"] = Settings(**base, keys_redis_url=redis.url)
            settings["redis-2"] = Settings(**base, keys_redis_url=redis.url)

        async def make_keys() -> dict[str, Any]:
            made: dict[str, Any] = {"memory": await new_key(file_store, "bench", 1e6)}
            made["memory-bursts"] = [
                await new_key(file_store, f"burst{i}", BUDGET) for i in range(args.bursts)
            ]
            if redis is not None:  # one store per event loop: asyncio.run makes a new one
                redis_store = RedisKeyStore(redis.url)
                made["redis"] = await new_key(redis_store, "bench", 1e6)
                made["redis-bursts"] = [
                    await new_key(redis_store, f"burst{i}", BUDGET) for i in range(args.bursts)
                ]
                await redis_store.aclose()
            return made

        secrets = asyncio.run(make_keys())
        with servers(list(settings.values()), encoder) as url_list:
            urls = dict(zip(settings, url_list, strict=True))
            timed = {name: urls[name] for name in ("open", "memory", "redis") if name in urls}
            keys = {"open": None, "memory": secrets["memory"], "redis": secrets.get("redis")}
            lat = latencies(timed, keys, args.n)
            bursts: dict[str, list[dict[str, Any]]] = {}
            for ledger in ("memory", "redis"):
                if ledger not in urls:
                    continue
                targets = (
                    [urls["memory"]] if ledger == "memory" else [urls["redis"], urls["redis-2"]]
                )
                bursts[ledger] = [
                    {"statuses": asyncio.run(burst(targets, secret))}
                    for secret in secrets[f"{ledger}-bursts"]
                ]
        # servers stopped: the memory ledger's spend file is final
        overspend: dict[str, float] = {}
        spent: dict[str, list[float]] = {}

        async def read_spend() -> None:
            records = {r.name: r.id for r in await file_store.records()}
            reader = MemoryBudgetLedger(spend_file_for(keys_file))
            spent["memory"] = [
                await reader.spend("key", records[f"burst{i}"], "1d") for i in range(args.bursts)
            ]
            if redis is not None:
                redis_store = RedisKeyStore(redis.url)
                rrecords = {r.name: r.id for r in await redis_store.records()}
                rreader = RedisBudgetLedger(redis.url)
                spent["redis"] = [
                    await rreader.spend("key", rrecords[f"burst{i}"], "1d")
                    for i in range(args.bursts)
                ]
                await rreader.aclose()
                await redis_store.aclose()

        asyncio.run(read_spend())
    for ledger, values in spent.items():
        overspend[ledger] = round(sum(max(0.0, v - BUDGET) for v in values), 6)
        for row, value in zip(bursts[ledger], values, strict=True):
            row["spent_usd"] = round(value, 6)

    p = {name: {"p50_ms": round(statistics.median(v), 3), "p95_ms": round(percentile(v, 0.95), 3)}
         for name, v in lat.items()}  # fmt: skip
    ratios = {
        name: {"p50": round(p[name]["p50_ms"] / p["open"]["p50_ms"], 3),
               "p95": round(p[name]["p95_ms"] / p["open"]["p95_ms"], 3)}
        for name in p if name != "open"
    }  # fmt: skip
    print(f"per-request latency over {args.n} requests each (pinned model, cache off):")
    for name, figures in p.items():
        extra = ""
        if name in ratios:
            extra = f"   x{ratios[name]['p50']} p50, x{ratios[name]['p95']} p95 of open"
        print(
            f"  {name:<7} p50 {figures['p50_ms']:7.3f} ms   p95 {figures['p95_ms']:7.3f} ms{extra}"
        )
    print(f"bursts of {BURST} concurrent requests against a {BUDGET:.2f} USD budget (all at")
    print("once: as many worst cases as fit are admitted, each settles to its real cost):")
    for ledger, rows in bursts.items():
        for row in rows:
            print(f"  {ledger:<7} spent {row['spent_usd']:.4f} USD  statuses {row['statuses']}")
        print(f"  {ledger:<7} overspend {overspend[ledger]:.6f} USD (must be 0)")
    if redis is None:
        print("  (no redis-server binary: the Redis figures are missing)")
    result = {
        "bench": "access",
        "n": args.n,
        "latency_ms": p,
        "ratio_to_open": ratios,
        "bursts": bursts,
        "overspend_usd": overspend,
        "budget_usd": BUDGET,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, separators=(",", ":")))
    return 0 if all(v == 0 for v in overspend.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
