"""Compare the encoder's torch and onnx backends in one run, alternating them.

The machine may be shared and noisy, so both backends run interleaved (round by round for
throughput, query by query for latency) and the ratios are the figures to trust.

    python3 scripts/bench_encoder.py [path/to/clinc150/data_full.json]

Prints a readable report, then one line with a JSON object of the headline figures
(throughput at batch size 64, single-query p50 latency).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from intent_router.embedding.encoder import Encoder

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "clinc150" / "data_full.json"
BATCH_SIZES = (32, 64, 128)
HEADLINE_BATCH = 64


def load_texts(path: Path, count: int) -> list[str]:
    rows = json.loads(path.read_text())["train"]
    step = max(1, len(rows) // count)
    return [str(row[0]) for row in rows[::step][:count]]


def throughput(encoder: Encoder, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    encoder.encode(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--count", type=int, default=3000, help="train utterances to embed")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per size")
    parser.add_argument("--queries", type=int, default=200, help="single queries to time")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    texts = load_texts(args.data.resolve(), args.count)
    encoders = {"torch": Encoder(backend="torch"), "onnx": Encoder(backend="onnx")}
    assert encoders["torch"].id == encoders["onnx"].id
    for encoder in encoders.values():  # warm-up: first-call allocations, lazy inits
        encoder.encode(texts[:256], batch_size=64)

    sample = texts[:500]
    agree = (encoders["torch"].encode(sample) * encoders["onnx"].encode(sample)).sum(axis=1)
    print(f"{len(texts)} CLINC150 train utterances from {args.data}")
    print(f"cosine onnx vs torch on {len(sample)}: min {agree.min():.7f}\n")

    rates: dict[tuple[str, int], list[float]] = {}
    print(f"throughput, utterances/s (median of {args.rounds} alternating rounds)")
    print(f"{'batch':>6} {'torch':>8} {'onnx':>8} {'ratio':>6}")
    for batch_size in BATCH_SIZES:
        for round_no in range(args.rounds):
            order = ["torch", "onnx"] if round_no % 2 == 0 else ["onnx", "torch"]
            for name in order:
                rate = throughput(encoders[name], texts, batch_size)
                rates.setdefault((name, batch_size), []).append(rate)
        t = statistics.median(rates[("torch", batch_size)])
        o = statistics.median(rates[("onnx", batch_size)])
        print(f"{batch_size:>6} {t:>8.0f} {o:>8.0f} {o / t:>6.2f}")

    latencies: dict[str, list[float]] = {"torch": [], "onnx": []}
    queries = texts[-args.queries :]
    for i, query in enumerate(queries):
        order = ["torch", "onnx"] if i % 2 == 0 else ["onnx", "torch"]
        for name in order:
            started = time.perf_counter()
            encoders[name].encode([query])
            latencies[name].append((time.perf_counter() - started) * 1000)
    p50 = {name: float(np.percentile(values, 50)) for name, values in latencies.items()}
    p95 = {name: float(np.percentile(values, 95)) for name, values in latencies.items()}
    print(f"\nsingle query over {len(queries)} queries, ms")
    print(f"{'':>6} {'p50':>8} {'p95':>8}")
    for name in ("torch", "onnx"):
        print(f"{name:>6} {p50[name]:>8.2f} {p95[name]:>8.2f}")

    torch_rate = statistics.median(rates[("torch", HEADLINE_BATCH)])
    onnx_rate = statistics.median(rates[("onnx", HEADLINE_BATCH)])
    print(f"\nheadline: batch {HEADLINE_BATCH} throughput and single-query p50")
    print(
        json.dumps(
            {
                "torch_utt_per_s": round(torch_rate, 1),
                "onnx_utt_per_s": round(onnx_rate, 1),
                "throughput_ratio": round(onnx_rate / torch_rate, 3),
                "torch_single_p50_ms": round(p50["torch"], 3),
                "onnx_single_p50_ms": round(p50["onnx"], 3),
                "latency_ratio": round(p50["onnx"] / p50["torch"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
