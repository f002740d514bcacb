"""Traces are optional: a null tracer when off, OpenTelemetry when asked for (``--otel``).

The record stage hands every finished request to ``tracer.record(record)``; with tracing off
that does nothing, so the request path has no ``if tracing`` branch. OpenTelemetry is
imported only when tracing is on (:mod:`.otel`); without the ``[otel]`` extra, asking for it
is refused at start-up with the command to install it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Protocol

from intent_router.errors import ConfigError
from intent_router.observability.record import RequestRecord

EXTRA_HINT = "pip install 'intent-router[otel]'"
REQUIRED_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
)


class Tracer(Protocol):
    def record(self, record: RequestRecord) -> None:
        """Export the spans of one finished request (never blocks, never raises)."""

    def shutdown(self) -> None:
        """Flush what is queued and stop (the server's shutdown)."""


class NullTracer:
    """Tracing off (the default): records are dropped."""

    def record(self, record: RequestRecord) -> None:
        pass

    def shutdown(self) -> None:
        pass


def require_otel() -> None:
    """Raise ConfigError naming the extra unless the OpenTelemetry SDK and exporter import."""
    missing = [name for name in REQUIRED_MODULES if not _importable(name)]
    if missing:
        raise ConfigError(
            f"traces need the [otel] extra ({', '.join(missing)} not installed): {EXTRA_HINT}",
            field="otel",
        )


def make_tracer(enabled: bool, upstream_ids: Mapping[str, str] | None = None) -> Tracer:
    """The server's tracer: OTLP over HTTP, configured by the standard ``OTEL_*`` variables
    (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME`` …), or the null tracer."""
    if not enabled:
        return NullTracer()
    require_otel()
    from intent_router.observability.otel import OtelTracer

    return OtelTracer(upstream_ids=upstream_ids)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
