"""The trace of one finished request, as plain data: read from its :class:`RequestRecord`.

No OpenTelemetry here (see :mod:`.otel` for the exporter): this module decides what a trace
says, so it is tested without the ``[otel]`` extra. One span per request (``SERVER``), one
child per chain attempt (``CLIENT``), named ``{gen_ai.operation.name} {gen_ai.request.model}``
as the GenAI semantic conventions ask (``chat auto`` for a routed request, ``chat NAME``
for a pinned one; ``chat UPSTREAM-ID`` for an attempt).

Attribute names follow the GenAI conventions (``gen_ai.*``, ``error.type``,
``http.response.status_code``); ours are under ``intent_router.*``. Prompt text appears only
when ``--log-prompts`` put it in the record (``record.prompt``, already redacted as the logs
are); answer text never does.

Timing: the request span is exact (the record's wall-clock start and latency). Attempts carry
their durations but not their start times, so their spans are laid back to back, the last
one ending when the request ended; the waits between attempts (backoff, cool-downs) show as
time before the first attempt. Skipped attempts are zero-length spans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from intent_router.observability.metrics import retry_reason
from intent_router.observability.record import RequestRecord
from intent_router.providers.base import Attempt, Outcome

Value = str | int | float | bool
SpanKind = Literal["server", "client"]

OPERATION = "chat"
AUTO = "auto"
# gen_ai.provider.name (and the older gen_ai.system) for each provider adapter.
GENAI_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini"}


@dataclass(frozen=True)
class SpanData:
    """One span to export: explicit start and end (ns since the epoch), no live context."""

    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    attributes: dict[str, Value]
    error: str | None = None  # error.type of a failed span (its status is then ERROR)
    children: tuple[SpanData, ...] = field(default=())


def request_span(record: RequestRecord, upstream_ids: Mapping[str, str] | None = None) -> SpanData:
    """The request's span and its attempts' children.

    ``upstream_ids`` maps a model name of the models file to its upstream model id (what
    ``gen_ai.request.model`` names on an attempt); a name missing from it stands for itself.
    """
    ids = upstream_ids or {}
    start = int(record.time * 1e9)
    end = start + max(0, int(record.latency_s * 1e9))
    requested = record.pinned or AUTO
    attributes: dict[str, Value] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.request.model": requested,
        "intent_router.request_id": record.request_id,
        "intent_router.endpoint": record.endpoint,
        "intent_router.route": record.route or "none",
        "intent_router.cache.tier": record.cache or "miss",
        "intent_router.outcome": record.outcome,
        "intent_router.chain": ",".join(record.chain),
    }
    attributes.update(_request_params(record))
    score = record.routing.get("score")
    if isinstance(score, int | float):
        attributes["intent_router.score"] = float(score)
    threshold = record.routing.get("threshold")
    if isinstance(threshold, int | float):
        attributes["intent_router.threshold"] = float(threshold)
    if record.similarity is not None:
        attributes["intent_router.cache.similarity"] = round(record.similarity, 4)
    if record.model is not None:
        attributes["gen_ai.response.model"] = record.model
        attributes.update(_usage(record))
        if record.provider in GENAI_PROVIDERS:
            attributes["gen_ai.provider.name"] = GENAI_PROVIDERS[record.provider]
    if record.cost_usd is not None and record.cache is None:
        attributes["intent_router.cost_usd"] = record.cost_usd
    if record.prompt is not None:
        attributes["intent_router.prompt"] = record.prompt
    error = record.error
    if error is None and record.outcome == "stream_error":
        error = "stream_error"
    if error is not None:
        attributes["error.type"] = error
    children = _attempt_spans(record, ids, end)
    return SpanData(f"{OPERATION} {requested}", "server", start, end, attributes, error, children)


def _request_params(record: RequestRecord) -> dict[str, Value]:
    return _known(
        {
            "gen_ai.request.max_tokens": record.max_tokens,
            "gen_ai.request.temperature": record.temperature,
        }
    )


def _usage(record: RequestRecord) -> dict[str, Value]:
    return _known(
        {
            "gen_ai.usage.input_tokens": record.input_tokens,
            "gen_ai.usage.output_tokens": record.output_tokens,
        }
    )


def _known(values: Mapping[str, Value | None]) -> dict[str, Value]:
    """The attributes whose value is known (a span attribute cannot be null)."""
    return {key: value for key, value in values.items() if value is not None}


def _attempt_spans(
    record: RequestRecord, ids: Mapping[str, str], end_ns: int
) -> tuple[SpanData, ...]:
    """Back to back, the last ending with the request (see the module docstring)."""
    spans: list[SpanData] = []
    cursor = end_ns
    answered = _answering_index(record)
    for i in range(len(record.attempts) - 1, -1, -1):
        attempt = record.attempts[i]
        start = cursor - max(0, int(attempt.latency_ms * 1e6))
        spans.append(_attempt_span(record, attempt, ids, start, cursor, i == answered))
        cursor = start
    return tuple(reversed(spans))


def _answering_index(record: RequestRecord) -> int | None:
    for i in range(len(record.attempts) - 1, -1, -1):
        attempt = record.attempts[i]
        if attempt.outcome is Outcome.OK and attempt.model == record.model:
            return i
    return None


def _attempt_span(
    record: RequestRecord,
    attempt: Attempt,
    ids: Mapping[str, str],
    start: int,
    end: int,
    answered: bool,
) -> SpanData:
    upstream = ids.get(attempt.model, attempt.model)
    attributes: dict[str, Value] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.request.model": upstream,
        "intent_router.model": attempt.model,
        "intent_router.attempt.outcome": attempt.outcome.value,
    }
    provider = GENAI_PROVIDERS.get(attempt.provider)
    if provider is not None:
        attributes["gen_ai.provider.name"] = provider
        attributes["gen_ai.system"] = provider  # the older name, still read by many backends
    attributes.update(_request_params(record))
    if attempt.status is not None:
        attributes["http.response.status_code"] = attempt.status
    if attempt.retry_after is not None:
        attributes["intent_router.retry_after_s"] = attempt.retry_after
    error: str | None = None
    if attempt.outcome in (Outcome.FAILED, Outcome.RETRIED):
        # the status code, else a bounded kind (timeout, connection), never the message
        error = str(attempt.status) if attempt.status else retry_reason(None, attempt.reason)
        attributes["error.type"] = error
    if answered:
        attributes["gen_ai.response.model"] = upstream
        attributes.update(_usage(record))
    return SpanData(f"{OPERATION} {upstream}", "client", start, end, attributes, error)
