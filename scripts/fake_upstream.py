"""Run the fake LLM upstream by hand, for demos and benchmarks.

    python3 scripts/fake_upstream.py --port 9100 --latency-ms 40 --p503 0.3 --p429 0.1

OpenAI base URL: http://HOST:PORT/v1; Anthropic and Gemini: http://HOST:PORT.
"""

from __future__ import annotations

import argparse
import logging
import threading

from intent_router.testing import FakeUpstream


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="base latency per call")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="between SSE events")
    parser.add_argument("--p503", type=float, default=0.0, help="probability of a 503")
    parser.add_argument("--p429", type=float, default=0.0, help="probability of a 429")
    parser.add_argument("--retry-after", default=None, help="Retry-After sent with faults")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # scripted drops are noisy
    fake = FakeUpstream(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        chunk_delay_ms=args.chunk_delay_ms,
        record_requests=False,
    )
    if args.p503 or args.p429:
        fake.chaos(p_503=args.p503, p_429=args.p429, seed=args.seed, retry_after=args.retry_after)
    with fake:
        logging.info("fake upstream on %s (OpenAI base %s)", fake.url, fake.openai_base)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logging.info("stopping")


if __name__ == "__main__":
    main()
