"""Benchmark the semantic response cache: lookup latency and hit quality.

Usage (from the repo root)::

    python scripts/bench_cache.py [--paws ../shared/data/paws/dev.tsv]
        [--paws ../shared/data/qqp/dev.tsv] [--quick] [--vector-cache '']

Prints a readable report and ends with ONE line holding a JSON object.

* Lookup latency of the semantic tier (``MemoryBackend.nearest``: vector search + expiry
  bookkeeping, embedding excluded) with 10k and 100k entries in ONE scope (the worst
  case), random unit vectors.
* Hit quality through the real lookup path with the shipped verifier
  (:class:`~intent_router.cache.ModelVerifier`): for every pair, ``store(question1)`` then
  ``lookup(question2)`` in a scope of its own, and count hits (exact or semantic). Each
  ``--paws FILE`` (PAWS or QQP format: ``id, question1, question2, label``; default: PAWS
  dev and QQP dev) gives the duplicate hit rate (label 1) and the false-hit rate (label 0),
  reported as ``<label>_hit_rate`` / ``<label>_false_hit_rate`` where the label is the
  file's folder (``paws``, ``qqp``) or its stem; the unprefixed keys of earlier versions
  (``paraphrase_hit_rate``, ``false_hit_rate``, halves by ``sha256(id) % 2``) describe the
  first file. The rule verifier and cosine alone are shown for comparison, with a
  threshold sweep. ``scripts/data/cache_pairs.tsv`` gives hand-written near misses and
  paraphrases. The model was fitted on QQP dev and PAWS dev (``scripts/fit_verifier.py``,
  held-out figures there): the rates on those files here are training-set figures.
* Verification cost: p50 of one verification of a candidate above the cosine gate, rule
  verifier vs model verifier (vetoes + word vectors of both texts + model).
* End to end (:func:`measure_hit_latency`): ``POST /complete`` through the real app with the
  fake upstream answering in 200 ms: p50 of cache hits over p50 of misses.

``--vector-cache ''`` embeds every run afresh and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from intent_router.cache import (
    AcceptAll,
    CacheDefaults,
    CachePolicy,
    CacheScope,
    MemoryBackend,
    ModelVerifier,
    ResponseCache,
    Verifier,
)
from intent_router.cache.entry import CacheEntry
from intent_router.cache.policy import DEFAULT_THRESHOLD
from intent_router.embedding.words import WordVectors

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PAWS = REPO.parent / "shared" / "data" / "paws" / "dev.tsv"
DEFAULT_QQP = REPO.parent / "shared" / "data" / "qqp" / "dev.tsv"
DEFAULT_PAIRS = REPO / "scripts" / "data" / "cache_pairs.tsv"
SWEEP = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98)
Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Pair:
    ident: str
    cached: str
    query: str
    label: int
    group: str


def read_paws(path: Path) -> list[Pair]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.rstrip("\r").split("\t")
        if len(cols) != 4 or cols[0] == "id":
            continue
        half = int(hashlib.sha256(cols[0].encode()).hexdigest(), 16) % 2
        pairs.append(Pair(cols[0], cols[1], cols[2], int(cols[3]), f"half{half}"))
    return pairs


def read_hand(path: Path) -> list[Pair]:
    pairs = []
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    for i, line in enumerate(ln for ln in lines if not ln.startswith("#")):
        cols = line.split("\t")
        if i == 0 or len(cols) != 4:
            continue
        pairs.append(Pair(str(i), cols[2], cols[3], int(cols[0]), cols[1]))
    return pairs


def file_label(path: Path, taken: set[str]) -> str:
    """``qqp`` for ``…/qqp/dev.tsv``: the folder name, else the file stem; made unique."""
    base = path.parent.name if path.stem in ("dev", "test", "train") else path.stem
    label, n = base, 2
    while label in taken:
        label, n = f"{base}{n}", n + 1
    taken.add(label)
    return label


class MemoWords:
    """``Encoder.word_vectors`` memoised per text (the sweep verifies a pair per threshold)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.memo: dict[str, WordVectors] = {}

    def __call__(self, texts: Sequence[str]) -> list[WordVectors]:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        for text, words in zip(todo, self.encoder.word_vectors(todo), strict=True):
            self.memo[text] = words
        return [self.memo[t] for t in texts]


def bench_verify(pairs: list[Pair], encoder: Any, limit: int = 300) -> dict[str, float]:
    """p50 ms of one verification of a pair that passes the cosine gate and the vetoes (so
    reaches the model): the rule verifier alone, and the shipped model verifier (vetoes,
    word vectors of both texts, model)."""
    from intent_router.cache import evidence
    from intent_router.cache.verify import Pair as TextPair

    reach_model = [
        p for p in pairs if evidence.veto(TextPair(p.query, p.cached), p.query, p.cached) is None
    ]
    chosen = reach_model[:limit]  # the pairs that cost a forward pass
    model = ModelVerifier(encoder.word_vectors)
    rules = Verifier()
    out: dict[str, float] = {}
    for name, verifier in (("rules", rules), ("model", model)):
        for p in chosen[:10]:  # warm-up
            verifier.verify(p.query, p.cached)
        samples = []
        for p in chosen:
            start = time.perf_counter()
            verifier.verify(p.query, p.cached)
            samples.append(time.perf_counter() - start)
        out[name] = percentiles(samples)[0]
    return out


def embed_pairs(pairs: list[Pair], cache_dir: Path | None) -> tuple[Vectors, Vectors]:
    """Embed both sides with the real encoder (vectors memoised on disk by content hash)."""
    from intent_router.embedding.encoder import Encoder

    texts = [p.cached for p in pairs] + [p.query for p in pairs]
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    file = cache_dir / f"vectors-{digest}.npy" if cache_dir else None
    if file is not None and file.is_file():
        vectors = np.load(file)
    else:
        vectors = Encoder().encode(texts, batch_size=128)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            np.save(file, vectors)
    return vectors[: len(pairs)], vectors[len(pairs) :]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def bench_lookup(n: int, queries: int, seed: int = 0) -> tuple[float, float]:
    """p50/p95 ms of one semantic-tier lookup with ``n`` entries in a single scope."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    backend = MemoryBackend(max_entries=n)
    scope = CacheScope.of(route="bench").digest
    for i in range(n):
        entry = CacheEntry(f"k{i}", scope, f"q{i}", 0.0, 9e18, 9e18)
        backend.store.put(entry, vectors[i])
    picks = vectors[rng.integers(0, n, queries)]
    noisy = picks + 0.03 * rng.standard_normal(picks.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    for q in noisy[:20]:  # warm-up
        backend.store.nearest(scope, q, 4, DEFAULT_THRESHOLD)
    samples = []
    for q in noisy:
        start = time.perf_counter()
        backend.store.nearest(scope, q, 4, DEFAULT_THRESHOLD)
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


async def run_pairs(
    pairs: list[Pair], a: Vectors, b: Vectors, verifier: Verifier, thresholds: tuple[float, ...]
) -> dict[float, list[bool]]:
    """store(cached) then lookup(query), one scope per pair; hits per threshold."""
    store_policy = CachePolicy(threshold=min(thresholds))
    cache = ResponseCache(
        MemoryBackend(max_entries=len(pairs) + 1),
        verifier=verifier,
        defaults=CacheDefaults(max_entries=len(pairs) + 1),
    )
    scopes = [CacheScope.of(route=f"pair-{p.ident}") for p in pairs]
    for p, scope, vec in zip(pairs, scopes, a, strict=True):
        await cache.store(scope, p.cached, vec, {"answer": p.ident}, store_policy)
    hits: dict[float, list[bool]] = {}
    for t in thresholds:
        policy = CachePolicy(threshold=t)
        hits[t] = [
            (await cache.lookup(scope, p.query, vec, policy)) is not None
            for p, scope, vec in zip(pairs, scopes, b, strict=True)
        ]
    return hits


def rate(hits: list[bool], pairs: list[Pair], label: int, group: str | None = None) -> float:
    chosen = [h for h, p in zip(hits, pairs, strict=True) if p.label == label]
    if group is not None:
        chosen = [
            h for h, p in zip(hits, pairs, strict=True) if p.label == label and p.group == group
        ]
    return sum(chosen) / len(chosen) if chosen else float("nan")


def measure_hit_latency(rounds: int = 40, upstream_ms: int = 200) -> float:
    """End-to-end ``POST /complete`` latency of a cache hit over a miss, through the real app.

    The router (``intent-router serve`` in its own process: shipped routes, in-process
    cache) and the fake upstream (answering after ``upstream_ms``) run as real servers on
    loopback; the client is ``http.client`` with keep-alive. Each round asks a new question (a
    miss that calls the upstream), then the same question again (an exact hit: answered before
    routing, no embedding) and a reworded one (a semantic hit: embedded once, verified).
    Returns p50(all hits) / p50(miss); the exact and semantic ratios are printed too.
    """
    import http.client
    import tempfile

    import yaml

    from intent_router.testing import FakeUpstream
    from intent_router.testing.server import serve_in_subprocess

    repo = Path(__file__).resolve().parent.parent
    names = sorted({m for f in (repo / "routes").glob("*.yaml")
                    for m in yaml.safe_load(f.read_text()).get("chain", [])})  # fmt: skip
    with FakeUpstream(latency_ms=upstream_ms) as fake, tempfile.TemporaryDirectory() as tmp:
        models = {
            name: {"provider": "openai", "base_url": fake.openai_base, "model": f"{name}-up",
                   "timeout_s": 5, "max_retries": 0, "price_per_mtok_input": 1.0,
                   "price_per_mtok_output": 1.0, "context_window": 100000}
            for name in names
        }  # fmt: skip
        models_file = Path(tmp) / "models.yaml"
        models_file.write_text(yaml.safe_dump({"default_chain": names[:1], "models": models}))
        args = ["--routes", str(repo / "routes"), "--index", str(Path(tmp) / "index"),
                "--models", str(models_file), "--build"]  # fmt: skip
        misses: list[float] = []
        hits: list[float] = []
        with serve_in_subprocess(args) as url:
            conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]))

            def timed(query: str) -> tuple[float, str]:
                t0 = time.perf_counter()
                conn.request("POST", "/complete", json.dumps({"query": query}),
                             {"content-type": "application/json"})  # fmt: skip
                response = conn.getresponse()
                response.read()
                elapsed = (time.perf_counter() - t0) * 1000
                assert response.status == 200, response.status
                return elapsed, str(response.headers["x-intent-router-cache"])

            exact: list[float] = []
            semantic: list[float] = []
            for i in range(rounds):
                question = f"write a python function number {i} that parses a date"
                elapsed, kind = timed(question)
                assert kind == "miss", kind
                misses.append(elapsed)
                elapsed, kind = timed(question.capitalize() + "?")
                assert kind == "exact", kind
                exact.append(elapsed)
                elapsed, kind = timed(question.replace(" that ", " which "))
                assert kind == "semantic", kind
                semantic.append(elapsed)
            hits = exact + semantic
    hit_p50, miss_p50 = float(np.median(hits)), float(np.median(misses))
    print(f"== end to end, upstream {upstream_ms} ms: miss p50 {miss_p50:.1f} ms; "
          f"exact hit p50 {np.median(exact):.1f} ms (ratio {np.median(exact) / miss_p50:.3f}); "
          f"semantic hit p50 {np.median(semantic):.1f} ms "
          f"(ratio {np.median(semantic) / miss_p50:.3f}); all hits ratio "
          f"{hit_p50 / miss_p50:.3f}")  # fmt: skip
    return round(hit_p50 / miss_p50, 4)


def main(argv: list[str] | None = None) -> int:
    from intent_router.embedding.encoder import Encoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--paws",
        type=Path,
        action="append",
        help="a pair file (id, question1, question2, label: PAWS or QQP format); repeat for "
        f"several (default: {DEFAULT_PAWS} and {DEFAULT_QQP})",
    )
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS)
    parser.add_argument("--queries", type=int, default=500, help="timed lookups per size")
    parser.add_argument("--quick", action="store_true", help="1000 pairs of each file (every k-th)")
    parser.add_argument(
        "--vector-cache",
        default=str(Path.home() / ".cache" / "intent-router" / "bench-cache"),
        help="where embedded pair vectors are memoised ('' to disable)",
    )
    args = parser.parse_args(argv)
    files: list[Path] = args.paws or [f for f in (DEFAULT_PAWS, DEFAULT_QQP) if f.is_file()]
    cache_dir = Path(args.vector_cache) if args.vector_cache else None
    result: dict[str, object] = {"default_threshold": DEFAULT_THRESHOLD}

    print("== semantic-tier lookup (one scope, random unit vectors, embedding excluded)")
    for n, name in ((10_000, "10k"), (100_000, "100k")):
        p50, p95 = bench_lookup(n, args.queries)
        result[f"lookup_p50_ms_{name}"] = round(p50, 3)
        result[f"lookup_p95_ms_{name}"] = round(p95, 3)
        print(f"  {n:>7,} entries: p50 {p50:.3f} ms   p95 {p95:.3f} ms")

    encoder = Encoder()
    words = MemoWords(encoder)
    verifier = ModelVerifier(words)
    hand = read_hand(args.pairs)
    hand_a, hand_b = embed_pairs(hand, cache_dir)
    hand_v = asyncio.run(run_pairs(hand, hand_a, hand_b, verifier, SWEEP))
    d = DEFAULT_THRESHOLD
    taken: set[str] = set()
    first = True
    candidates: list[Pair] = []
    for path in files:
        label = file_label(path, taken)
        pairs = read_paws(path)
        if args.quick:  # an even spread: the files may be sorted by label
            pairs = pairs[:: max(1, len(pairs) // 1000)][:1000]
        print(f"\n== {label}: hit quality through store/lookup ({path}, {len(pairs)} pairs)")
        a, b = embed_pairs(pairs, cache_dir)
        verified = asyncio.run(run_pairs(pairs, a, b, verifier, SWEEP))
        rule_hits = asyncio.run(run_pairs(pairs, a, b, Verifier(), SWEEP))
        cosine = asyncio.run(run_pairs(pairs, a, b, AcceptAll(), SWEEP))
        candidates += [p for p, c in zip(pairs, cosine[d], strict=True) if c]
        print("  threshold | model: dup hit  false hit | half0 hit/false | half1 hit/false"
              " | rules hit/false | cosine-only hit/false")  # fmt: skip
        for t in SWEEP:
            v, r, c = verified[t], rule_hits[t], cosine[t]
            mark = " <- default" if t == d else ""
            print(
                f"  {t:9.2f} | {rate(v, pairs, 1):14.3f}  {rate(v, pairs, 0):9.4f} |"
                f" {rate(v, pairs, 1, 'half0'):.3f}/{rate(v, pairs, 0, 'half0'):.4f}    |"
                f" {rate(v, pairs, 1, 'half1'):.3f}/{rate(v, pairs, 0, 'half1'):.4f}    |"
                f" {rate(r, pairs, 1):.3f}/{rate(r, pairs, 0):.4f}     |"
                f" {rate(c, pairs, 1):.3f}/{rate(c, pairs, 0):.4f}{mark}"
            )
        result |= {
            f"{label}_hit_rate": round(rate(verified[d], pairs, 1), 4),
            f"{label}_false_hit_rate": round(rate(verified[d], pairs, 0), 4),
            f"{label}_rules_hit_rate": round(rate(rule_hits[d], pairs, 1), 4),
            f"{label}_rules_false_hit_rate": round(rate(rule_hits[d], pairs, 0), 4),
            f"{label}_cosine_only_hit_rate": round(rate(cosine[d], pairs, 1), 4),
            f"{label}_cosine_only_false_hit_rate": round(rate(cosine[d], pairs, 0), 4),
            f"{label}_pairs": len(pairs),
        }
        if first:  # the keys of earlier versions: the first file given (PAWS by default)
            first = False
            result |= {
                "paraphrase_hit_rate": round(rate(verified[d], pairs, 1), 4),
                "false_hit_rate": round(rate(verified[d], pairs, 0), 4),
                "paraphrase_hit_rate_half0": round(rate(verified[d], pairs, 1, "half0"), 4),
                "false_hit_rate_half0": round(rate(verified[d], pairs, 0, "half0"), 4),
                "paraphrase_hit_rate_half1": round(rate(verified[d], pairs, 1, "half1"), 4),
                "false_hit_rate_half1": round(rate(verified[d], pairs, 0, "half1"), 4),
                "cosine_only_paraphrase_hit_rate": round(rate(cosine[d], pairs, 1), 4),
                "cosine_only_false_hit_rate": round(rate(cosine[d], pairs, 0), 4),
                "paws_pairs": len(pairs),
            }

    print(f"\n== hand-written pairs ({len(hand)}): near-miss false hits, paraphrase hits")
    print("  threshold | near-miss false | hand para | hand hard")
    for t in SWEEP:
        h = hand_v[t]
        para_hit = [x for x, p in zip(h, hand, strict=True) if p.group == "para"]
        hard_hit = [x for x, p in zip(h, hand, strict=True) if p.group == "para_hard"]
        mark = " <- default" if t == d else ""
        print(f"  {t:9.2f} | {rate(h, hand, 0):15.4f} | {np.mean(para_hit):9.3f} |"
              f" {np.mean(hard_hit):9.3f}{mark}")  # fmt: skip
    hand_hits = hand_v[d]
    result |= {
        "near_miss_false_hit_rate": round(rate(hand_hits, hand, 0), 4),
        "hand_paraphrase_hit_rate": round(rate(hand_hits, hand, 1), 4),
        "hand_paraphrase_hit_rate_plain": round(
            float(np.mean([x for x, p in zip(hand_hits, hand, strict=True) if p.group == "para"])),
            4,
        ),
        "near_miss_pairs": sum(p.label == 0 for p in hand),
        "hand_paraphrase_pairs": sum(p.label == 1 for p in hand),
    }
    lies = [p for x, p in zip(hand_hits, hand, strict=True) if x and p.label == 0]
    for p in lies:
        print(f"  FALSE HIT ({p.group}): {p.cached!r} -> {p.query!r}")

    timing = bench_verify(candidates, encoder)
    print(f"\n== verification of a candidate that reaches the model (one thread): rules p50 "
          f"{timing['rules']:.3f} ms, model p50 {timing['model']:.3f} ms")  # fmt: skip
    result["verify_p50_ms_rules"] = round(timing["rules"], 3)
    result["verify_p50_ms_model"] = round(timing["model"], 3)
    result["hit_latency_ratio"] = measure_hit_latency()
    print()
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
