"""What recording one request costs: metrics, the decision-log row, the request log line.

Builds a realistic :class:`RequestRecord` (a routed request with five candidates and two
attempts, one retried) and times, in one run: ``observe`` (histograms and counters),
``row`` + queueing it on a :class:`DecisionLog` (no writer: the queue drops when full, as
under a stalled disk), and ``log_line`` + ``json.dumps``. Then the writer's throughput:
rows written per second through the real thread and file. With the ``[otel]`` extra, also
traces: queueing the record for the trace worker (what the request pays) and the worker's
throughput building and batching the spans (in the background). Prints a report and one
JSON line.

    PYTHONPATH=src python scripts/bench_observability.py [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from intent_router.observability.decision_log import DecisionLog
from intent_router.observability.metrics import Metrics
from intent_router.observability.record import RequestRecord
from intent_router.providers.base import Attempt, Outcome


def sample_record(i: int) -> RequestRecord:
    candidates = [{"route": f"r{j}", "score": 0.9 - j / 10} for j in range(5)]
    return RequestRecord(
        request_id=f"req_{i}",
        endpoint="chat.completions",
        time=time.time(),
        route="r0",
        chain=["strong-coder", "cheap-general"],
        routing={"route": "r0", "score": 0.9, "threshold": 0.5, "candidates": candidates},
        model="cheap-general",
        provider="openai",
        input_tokens=120,
        output_tokens=300,
        cost_usd=0.0004,
        attempts=[
            Attempt("strong-coder", "anthropic", Outcome.RETRIED, 503, "upstream 503", 40.0),
            Attempt("cheap-general", "openai", Outcome.OK, 200, "", 300.0),
        ],
        latency_s=0.35,
    )


def per_call_us(fn: Callable[[int], object], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n * 1e6


async def writer_rows_per_s(folder: Path, n: int) -> float:
    metrics = Metrics()
    log = DecisionLog(folder / "d.jsonl", metrics, max_queue=n + 1)
    rows = [sample_record(i).row() for i in range(n)]
    log.start()
    t0 = time.perf_counter()
    for row in rows:
        log.write(row)
    await log.aclose()
    return n / (time.perf_counter() - t0)


def trace_costs(records: list[RequestRecord]) -> tuple[float, float] | None:
    """(us per request to queue a record, records/s the trace worker turns into spans)."""
    try:
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from intent_router.observability.otel import OtelTracer
    except ImportError:
        return None
    tracer = OtelTracer(InMemorySpanExporter(), max_queue=len(records) + 1)
    t0 = time.perf_counter()
    queued = per_call_us(lambda i: tracer.record(records[i]), len(records))
    tracer.flush()
    rate = len(records) / (time.perf_counter() - t0)
    tracer.shutdown()
    assert tracer.dropped == 0
    return queued, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    metrics = Metrics()
    metrics.declare_models(["strong-coder", "cheap-general"])
    metrics.declare_routes(["r0", "r1", "r2", "r3", "r4"])
    records = [sample_record(i) for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        full = DecisionLog(Path(tmp) / "unused.jsonl", metrics, max_queue=1)
        full.write({"fill": 1})
        observe = per_call_us(lambda i: records[i].observe(metrics), args.n)
        row = per_call_us(lambda i: full.write(records[i].row()), args.n)
        line = per_call_us(lambda i: json.dumps(records[i].log_line()), args.n)
        build = per_call_us(sample_record, args.n)
        rate = asyncio.run(writer_rows_per_s(Path(tmp), args.n))
    traces = trace_costs(records)
    total = observe + row + line
    print(f"{args.n} requests recorded (one process, one run)")
    print(f"  metrics observe:            {observe:7.1f} us/request")
    print(f"  decision row + queue:       {row:7.1f} us/request")
    print(f"  request log line + dumps:   {line:7.1f} us/request")
    print(f"  total recording:            {total:7.1f} us/request "
          f"({total / build:.1f}x building the record)")  # fmt: skip
    print(f"  writer: {rate:,.0f} rows/s through the thread and file")
    if traces is None:
        print("  traces: the [otel] extra is not installed")
    else:
        print(f"  traces: {traces[0]:.1f} us/request to queue ({traces[0] / observe:.2f}x "
              f"observe); worker {traces[1]:,.0f} requests/s into spans")  # fmt: skip
    result = {
        "n": args.n,
        "observe_us": round(observe, 2),
        "row_us": round(row, 2),
        "log_line_us": round(line, 2),
        "total_us": round(total, 2),
        "total_vs_build_ratio": round(total / build, 2),
        "writer_rows_per_s": round(rate),
        "trace_queue_us": None if traces is None else round(traces[0], 2),
        "trace_queue_vs_observe_ratio": None if traces is None else round(traces[0] / observe, 3),
        "trace_worker_requests_per_s": None if traces is None else round(traces[1]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
