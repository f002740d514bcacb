"""Safe change under load: reloads, shadow calls on the served path, a failing canary.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python scripts/bench_rollout.py [--rounds 150]

Everything runs on 127.0.0.1 in this process: one :class:`FakeUpstream` (``--latency-ms``
per call) and routers served with ``serve_in_thread``, sharing one encoder. Two small
routes (``code``, ``chitchat``); the response cache is off (every request is dispatched).

1. **Shadow.** Three routers that differ only in ``code``'s ``shadow:`` block: ``off`` (no
   shadow), ``on`` (``shadow: {models: [shadow-model], sample: 1.0}``, the shadow model
   answering after ``--shadow-delay-s``, then the similarity of the two answers computed
   by the encoder) and ``bare`` (the same with ``similarity: false``). ``--concurrency``
   clients each send, per round, one request to each router in a random order (so all
   see the same machine load); ``shadow_p50_ratio`` is p50(on) / p50(off) of the
   client-measured latency in that one run, ``shadow_bare_p50_ratio`` p50(bare) / p50(off).
2. **Canary.** ``code`` has ``variants: stable [served-model] 80, next [bad-model] 20
   canary`` and ``canary: {min_requests: --min-requests}``; ``bad-model`` answers 500 to
   every call (no retries). Requests with distinct ``user`` values are sent one at a time
   until ``GET /admin/rollouts`` shows ``next`` at weight 0: ``canary_requests_until_
   rollback`` counts them (the queries are ``code``'s own utterances: all go to ``code``).
   Then ``--after`` more requests: ``canary_calls_after_rollback`` must be 0.
3. **Reload.** ``--concurrency`` clients send without pause while ``POST /admin/reload``
   is called 10 times, each after adding an utterance to ``chitchat.yaml`` (an incremental
   build each time): ``reload_failed_requests`` counts the non-200 answers meanwhile. It
   needs the admin endpoints of issue 12 part A; without them the figure is ``null``.

``client_visible_failures`` counts every non-200 answer of every phase. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.server import serve_in_thread

sys.path.insert(0, str(Path(__file__).parent))
from bench_dispatch import fake_nodelay  # a sibling script

ADMIN_KEY = "bench-admin-key"
CODE = [
    "write a python function that parses a date",
    "fix this javascript bug in my react component",
    "why does my rust code not compile",
    "write a SQL query that joins two tables",
    "explain what this bash script does",
    "implement a linked list in C",
    "write unit tests for this function",
    "refactor this java class to use interfaces",
]
CHITCHAT = [
    "hi there, how are you today",
    "thanks, that was really helpful",
    "tell me a bit about yourself",
    "goodbye, talk to you later",
    "how was your weekend",
    "nice to meet you",
]
QUERIES = CODE  # every request goes to `code`, the route with the shadow or the canary


def write_config(folder: Path, fake: FakeUpstream, code_extra: dict[str, Any]) -> Settings:
    routes = folder / "routes"
    routes.mkdir(parents=True)
    code = {"name": "code", "utterances": CODE, **code_extra}
    if "variants" not in code_extra:
        code["chain"] = ["served-model"]
    (routes / "code.yaml").write_text(yaml.safe_dump(code))
    chat = {"name": "chitchat", "utterances": CHITCHAT, "chain": ["served-model"]}
    (routes / "chitchat.yaml").write_text(yaml.safe_dump(chat))

    def spec(upstream: str, retries: int) -> dict[str, Any]:
        return {
            "provider": "openai", "base_url": fake.base_url("openai"), "model": upstream,
            "timeout_s": 5, "max_retries": retries, "context_window": 8000,
            "price_per_mtok_input": 1.0, "price_per_mtok_output": 2.0,
        }  # fmt: skip

    models = {
        "default_chain": ["served-model"],
        "deadline_s": 10,
        "breaker": {"minimum_calls": 10_000},  # the canary monitor decides, not the breaker
        "models": {
            "served-model": spec("served-up", 1),
            "shadow-model": spec("shadow-up", 0),
            "bad-model": spec("bad-up", 0),
        },
    }
    (folder / "models.yaml").write_text(yaml.safe_dump(models))
    return Settings(
        routes_dir=routes,
        index_dir=folder / "index",
        models_file=folder / "models.yaml",
        build_on_start=True,
        cache_backend="off",
    )


@contextmanager
def router(
    tmp: Path, name: str, fake: FakeUpstream, encoder: Encoder, code_extra: dict[str, Any]
) -> Iterator[str]:
    settings = write_config(tmp / name, fake, code_extra)
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        yield url


def body(query: str, user: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": query}]}
    if user is not None:
        payload["user"] = user
    return payload


async def timed(client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> tuple[float, int]:
    """Latency and status of one chat request (status 0: no HTTP answer at all)."""
    t0 = time.perf_counter()
    try:
        response = await client.post(f"{url}/v1/chat/completions", json=payload)
    except httpx.HTTPError:
        return time.perf_counter() - t0, 0
    return time.perf_counter() - t0, response.status_code


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def shadow_phase(off: str, on: str, bare: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    lat: dict[str, list[float]] = {"off": [], "on": [], "bare": []}
    failures = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for url in (off, on, bare):  # warm-up
            await timed(client, url, body(QUERIES[0]))

        async def worker(w: int) -> None:
            nonlocal failures
            for i in range(args.rounds // args.concurrency):
                arms = [("off", off), ("on", on), ("bare", bare)]
                rng.shuffle(arms)
                for arm, url in arms:
                    seconds, status = await timed(
                        client, url, body(QUERIES[(w + i) % len(QUERIES)])
                    )
                    lat[arm].append(seconds)
                    failures += status != 200

        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        await asyncio.sleep(args.shadow_delay_s + 1.0)  # let the last shadow calls finish
        metrics = (await client.get(f"{on}/metrics")).text
    return {
        "p50_off_ms": statistics.median(lat["off"]) * 1000,
        "p50_on_ms": statistics.median(lat["on"]) * 1000,
        "p50_bare_ms": statistics.median(lat["bare"]) * 1000,
        "p95_off_ms": p(lat["off"], 0.95) * 1000,
        "p95_on_ms": p(lat["on"], 0.95) * 1000,
        "requests": sum(len(v) for v in lat.values()),
        "shadow_ok": scrape(metrics, "intent_router_shadow_requests_total", 'outcome="ok"'),
        "shadow_dropped": scrape(
            metrics, "intent_router_shadow_requests_total", 'outcome="dropped"'
        ),
        "similarity_count": scrape(metrics, "intent_router_shadow_similarity_count", ""),
        "failures": failures,
    }


def scrape(text: str, name: str, needle: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and needle in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def canary_phase(url: str, fake: FakeUpstream, args: argparse.Namespace) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    failures, sent, until = 0, 0, None
    async with httpx.AsyncClient(timeout=30) as client:
        while sent < args.max_canary_requests:
            _, status = await timed(
                client, url, body(QUERIES[sent % len(QUERIES)], user=f"user-{sent}")
            )
            sent += 1
            failures += status != 200
            state = (await client.get(f"{url}/admin/rollouts", headers=headers)).json()
            variants = {v["name"]: v for v in state["routes"]["code"]["variants"]}
            if variants["next"]["weight"] == 0:
                until = sent
                break
        canary_calls = fake.calls("bad-up")
        for i in range(args.after):
            _, status = await timed(client, url, body(QUERIES[i % len(QUERIES)], user=f"after-{i}"))
            failures += status != 200
    return {
        "requests_until_rollback": until,
        "canary_calls_before_rollback": canary_calls,
        "canary_calls_after_rollback": fake.calls("bad-up") - canary_calls,
        "rolled_back": variants["next"]["rolled_back"],
        "failures": failures,
    }


async def reload_phase(url: str, routes: Path, args: argparse.Namespace) -> dict[str, Any]:
    """10 reloads (each adds an utterance to ``chitchat``, so the index is rebuilt) while
    ``--concurrency`` clients keep sending; counts every non-200 answer meanwhile."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(timeout=60) as client:
        probe = await client.get(f"{url}/admin/config", headers=headers)
        if probe.status_code == 404:
            note = "no /admin/reload on this build (issue 12 part A not merged): not measured"
            return {"failed": None, "requests": 0, "reloads": 0, "note": note}
        stop, sent, failed = asyncio.Event(), 0, 0

        async def load(w: int) -> None:
            nonlocal sent, failed
            i = 0
            while not stop.is_set():
                query = (QUERIES + CHITCHAT)[(w + i) % (len(QUERIES) + len(CHITCHAT))]
                _, status = await timed(client, url, body(query))
                sent, failed, i = sent + 1, failed + (status != 200), i + 1

        workers = [asyncio.create_task(load(w)) for w in range(args.concurrency)]
        statuses = []
        chitchat = routes / "chitchat.yaml"
        for n in range(10):
            data = yaml.safe_load(chitchat.read_text())
            data["utterances"].append(f"hello again, friend number {n}")
            chitchat.write_text(yaml.safe_dump(data))
            statuses.append((await client.post(f"{url}/admin/reload", headers=headers)).status_code)
        stop.set()
        await asyncio.gather(*workers)
    note = f"reload statuses {sorted(set(statuses))}"
    return {"failed": failed, "requests": sent, "reloads": len(statuses), "note": note}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=160, help="per arm, over all clients")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--shadow-delay-s", type=float, default=0.5)
    parser.add_argument("--min-requests", type=int, default=20)
    parser.add_argument("--max-canary-requests", type=int, default=1000)
    parser.add_argument("--after", type=int, default=100)
    args = parser.parse_args()
    os.environ["INTENT_ROUTER_ADMIN_KEY"] = ADMIN_KEY
    encoder = Encoder()
    shadow = {"shadow": {"models": ["shadow-model"], "sample": 1.0, "max_in_flight": 64}}
    no_similarity = {"shadow": {**shadow["shadow"], "similarity": False}}
    canary = {
        "variants": [
            {"name": "stable", "chain": ["served-model"], "weight": 80},
            {"name": "next", "chain": ["bad-model"], "weight": 20, "canary": True},
        ],
        "canary": {"min_requests": args.min_requests, "window_s": 120},
    }
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        FakeUpstream(latency_ms=args.latency_ms) as fake,
        ExitStack() as stack,
    ):
        fake_nodelay(fake)
        fake.always("shadow-up", Fault.slow(args.shadow_delay_s))
        fake.always("bad-up", Fault.http(500))
        tmp = Path(tmp_name)
        off = stack.enter_context(router(tmp, "off", fake, encoder, {}))
        on = stack.enter_context(router(tmp, "on", fake, encoder, shadow))
        bare = stack.enter_context(router(tmp, "bare", fake, encoder, no_similarity))
        can = stack.enter_context(router(tmp, "canary", fake, encoder, canary))
        shadowed = asyncio.run(shadow_phase(off, on, bare, args))
        canaried = asyncio.run(canary_phase(can, fake, args))
        reloaded = asyncio.run(reload_phase(off, tmp / "off" / "routes", args))
    ratio = shadowed["p50_on_ms"] / shadowed["p50_off_ms"]
    bare_ratio = shadowed["p50_bare_ms"] / shadowed["p50_off_ms"]
    failures = shadowed["failures"] + canaried["failures"] + (reloaded["failed"] or 0)
    print(
        f"shadow: {shadowed['requests']} requests, {args.concurrency} clients, upstream "
        f"{args.latency_ms:.0f} ms, shadow model {args.shadow_delay_s * 1000:.0f} ms"
    )
    print(
        f"  p50 served latency: off {shadowed['p50_off_ms']:.1f} ms, on "
        f"{shadowed['p50_on_ms']:.1f} ms (ratio {ratio:.3f}); p95 off "
        f"{shadowed['p95_off_ms']:.1f} ms, on {shadowed['p95_on_ms']:.1f} ms"
    )
    print(
        f"  without the similarity: p50 {shadowed['p50_bare_ms']:.1f} ms "
        f"(ratio {bare_ratio:.3f} to off)"
    )
    print(
        f"  shadow calls ok {shadowed['shadow_ok']:.0f}, dropped "
        f"{shadowed['shadow_dropped']:.0f}, similarities {shadowed['similarity_count']:.0f}"
    )
    print(
        f"canary: rolled back after {canaried['requests_until_rollback']} requests "
        f"({canaried['canary_calls_before_rollback']} reached the failing canary); "
        f"calls to it afterwards: {canaried['canary_calls_after_rollback']}"
    )
    print(f"  verdict: {json.dumps(canaried['rolled_back'])}")
    print(
        f"reload: {reloaded['reloads']} reloads, {reloaded['requests']} requests meanwhile, "
        f"{reloaded['failed']} failed ({reloaded['note']})"
    )
    print(f"client-visible failures: {failures}")
    result = {
        "reload_failed_requests": reloaded["failed"],
        "reload_note": reloaded["note"],
        "shadow_p50_ratio": round(ratio, 3),
        "shadow_p50_off_ms": round(shadowed["p50_off_ms"], 2),
        "shadow_p50_on_ms": round(shadowed["p50_on_ms"], 2),
        "shadow_bare_p50_ratio": round(bare_ratio, 3),
        "shadow_p95_ratio": round(shadowed["p95_on_ms"] / shadowed["p95_off_ms"], 3),
        "shadow_calls_ok": int(shadowed["shadow_ok"]),
        "shadow_calls_dropped": int(shadowed["shadow_dropped"]),
        "canary_requests_until_rollback": canaried["requests_until_rollback"],
        "canary_calls_before_rollback": canaried["canary_calls_before_rollback"],
        "canary_calls_after_rollback": canaried["canary_calls_after_rollback"],
        "client_visible_failures": failures,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
