"""A process-wide retry budget (Envoy's retry budget, gRPC retry throttling).

Retries may be at most ``ratio`` of the requests seen in the last ``window_s`` seconds,
but at least ``min_per_s`` per second so low traffic can still retry. During a
brown-out this leaves retries to the requests that need them; during an outage it keeps
retries from multiplying the load on upstreams that are already failing. What was
refused is counted (``skipped``) for the metrics; the dispatcher also records it in the
attempts. The clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from intent_router.resilience.window import Window


class RetryBudget:
    """Counts requests and retries in a sliding window; :meth:`try_spend` asks for one retry."""

    def __init__(
        self,
        *,
        ratio: float = 0.5,
        min_per_s: float = 3.0,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.window_s = window_s
        self.clock = clock
        self._window = Window()  # counts: (requests, retries)
        self.requests = 0
        self.retries = 0
        self.skipped = 0

    def record_request(self) -> None:
        self._window = self._window.add(self.clock(), (1, 0), span_s=self.window_s)
        self.requests += 1

    def allowance(self) -> float:
        """Retries allowed in the current window."""
        requests, _ = self._window.totals(self.clock(), span_s=self.window_s, width=2)
        return max(self.ratio * requests, self.min_per_s * self.window_s)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False (and counted as skipped) when it is spent."""
        _, retries = self._window.totals(self.clock(), span_s=self.window_s, width=2)
        if retries + 1 > self.allowance():
            self.skipped += 1
            return False
        self._window = self._window.add(self.clock(), (0, 1), span_s=self.window_s)
        self.retries += 1
        return True
