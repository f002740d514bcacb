"""The record stage: what one exchange did, once — metrics, a log line, a decision row.

The recorder belongs to the gateway, not to a runtime: metrics, the decision log and the
console's traffic outlive a configuration reload.
"""

from __future__ import annotations

import json
import logging
import time

from intent_router.observability.decision_log import DecisionLog
from intent_router.observability.metrics import Metrics
from intent_router.observability.prompt_log import LogPrompts, prompt_for_log
from intent_router.observability.record import RequestRecord
from intent_router.observability.traffic import TrafficStats, event_from_log_line
from intent_router.pipeline.exchange import Exchange

request_log = logging.getLogger("intent_router.requests")


class Recorder:
    """Records each exchange: metrics, one ``intent_router.requests`` line, one decision
    row (when a decision log is on), and the console's traffic."""

    def __init__(
        self,
        metrics: Metrics,
        decision_log: DecisionLog | None = None,
        log_prompts: LogPrompts = "off",
    ) -> None:
        self.metrics = metrics
        self.decision_log = decision_log
        self.log_prompts = log_prompts
        self.traffic = TrafficStats()  # what the console draws

    def record(self, ex: Exchange) -> None:
        record = self.request_record(ex)
        record.observe(self.metrics)
        if self.decision_log is not None:
            self.decision_log.write(record.row())
        line = record.log_line()
        request_log.info(json.dumps(line, separators=(",", ":")))
        self.traffic.record(event_from_log_line(line, time.time()))

    def first_token(self, ex: Exchange, model: str) -> None:
        """Time to first token of a stream (a replayed cache hit included)."""
        self.metrics.ttft.labels(model).observe(time.perf_counter() - ex.call.started)

    def request_record(self, ex: Exchange) -> RequestRecord:
        call, plan, response, error = ex.call, ex.plan, ex.response, ex.error
        record = RequestRecord(
            request_id=call.request_id,
            endpoint=call.endpoint,
            time=call.at,
            route=plan.route,
            pinned=plan.pinned,
            chain=list(plan.chain),
            routing=plan.to_dict() if plan.decision is not None else {},
            cache=ex.cache.hit,
            similarity=ex.cache.similarity,
            latency_s=time.perf_counter() - call.started,
            prompt=prompt_for_log(plan.text, self.log_prompts),
            skipped=list(ex.skipped),
            key_id=None if ex.principal.anonymous else ex.principal.key_id,
            team=ex.principal.team,
            notes=dict(ex.notes),
        )
        if response is not None:
            record.model, record.provider = response.model, response.provider
            record.input_tokens = response.input_tokens
            record.output_tokens = response.output_tokens
            record.cost_usd = response.cost_usd
            record.attempts = list(response.attempts)
        if error is not None and record.cache == "stale":
            record.stale_because = str(error)
        elif error is not None:
            record.outcome, record.error, record.reason = "error", type(error).__name__, str(error)
        if error is not None and not record.attempts:
            record.attempts = [a for a in getattr(error, "attempts", []) if hasattr(a, "outcome")]
        if ex.stream_error is not None:
            record.outcome, record.reason = "stream_error", ex.stream_error
        return record
