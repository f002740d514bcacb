"""``intent-router-fake-upstream``: the fake LLM upstream as a dev tool, for trying a models
file offline, demos and benchmarks.

    intent-router-fake-upstream --port 9100 --latency-ms 40 --p503 0.3 --p429 0.1
    intent-router-fake-upstream --fault gpt-4o=503 --fault claude-3-5-sonnet=slow:2.5

OpenAI base URL: http://HOST:PORT/v1; Anthropic and Gemini: http://HOST:PORT. ``--fault
MODEL=SPEC`` (repeatable) makes every call to that upstream model id fail the same way:
an HTTP status (``503``, ``429`` …), ``hang``, ``drop``, ``malformed``, ``missing``,
``break`` (streams cut after the first chunk) or ``slow:SECONDS``.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Sequence

from intent_router.testing.fake_upstream import FakeUpstream, Fault

_NAMED = {
    "hang": Fault.hang(),
    "drop": Fault.drop(),
    "malformed": Fault.malformed(),
    "missing": Fault.missing_fields(),
    "break": Fault.break_stream(),
}


def parse_fault(text: str, retry_after: str | None = None) -> tuple[str, Fault]:
    """``MODEL=SPEC`` → (model id, fault); ValueError saying what is wrong otherwise."""
    model, sep, spec = text.rpartition("=")
    if not sep or not model or not spec:
        raise ValueError(f"{text!r}: expected MODEL=SPEC, e.g. gpt-4o=503")
    if spec in _NAMED:
        return model, _NAMED[spec]
    if spec.startswith("slow:"):
        try:
            return model, Fault.slow(float(spec.removeprefix("slow:")))
        except ValueError:
            raise ValueError(f"{text!r}: slow needs seconds, e.g. slow:2.5") from None
    if spec.isdigit() and 400 <= int(spec) <= 599:
        return model, Fault.http(int(spec), retry_after=retry_after)
    kinds = ", ".join(["an HTTP status 400-599", *_NAMED, "slow:SECONDS"])
    raise ValueError(f"{text!r}: unknown fault {spec!r} (one of: {kinds})")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intent-router-fake-upstream",
        description="A fake OpenAI / Anthropic / Gemini upstream with scripted faults.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="base latency per call")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="between SSE events")
    parser.add_argument("--p503", type=float, default=0.0, help="probability of a 503")
    parser.add_argument("--p429", type=float, default=0.0, help="probability of a 429")
    parser.add_argument("--retry-after", default=None, help="Retry-After sent with faults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="MODEL=SPEC",
        help="every call to MODEL fails: 503, 429, hang, drop, malformed, missing, break, "
        "slow:SECONDS (repeatable)",
    )
    return parser


def fake_from_args(argv: Sequence[str] | None = None) -> FakeUpstream:
    """The configured (not yet started) fake; exits with a usage error on bad flags."""
    cli = parser()
    args = cli.parse_args(argv)
    fake = FakeUpstream(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        chunk_delay_ms=args.chunk_delay_ms,
        record_requests=False,
    )
    if args.p503 or args.p429:
        fake.chaos(p_503=args.p503, p_429=args.p429, seed=args.seed, retry_after=args.retry_after)
    for text in args.fault:
        try:
            model, fault = parse_fault(text, args.retry_after)
        except ValueError as exc:
            cli.error(f"--fault {exc}")
        fake.always(model, fault)
    return fake


def main(argv: Sequence[str] | None = None) -> None:
    fake = fake_from_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # scripted drops are noisy
    with fake:
        logging.info("fake upstream on %s (OpenAI base %s)", fake.url, fake.openai_base)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logging.info("stopping")


if __name__ == "__main__":
    main()
