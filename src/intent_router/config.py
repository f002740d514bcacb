"""Settings, parsed once at the boundary (CLI flags or ``INTENT_ROUTER_*`` variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from intent_router.embedding.choice import DEFAULT_ENCODER


class Settings(BaseSettings):
    """Everything the server and the CLI need; unknown variables are ignored, bad ones refused."""

    model_config = SettingsConfigDict(env_prefix="INTENT_ROUTER_", extra="forbid", frozen=True)

    routes_dir: Path = Path("routes")
    index_dir: Path = Path("index")
    encoder: str = DEFAULT_ENCODER
    """``minilm``, ``e5-small`` or ``use-m`` (see :mod:`intent_router.embedding.choice`), or a
    model package that ships a ``model`` folder, or a sentence-transformers folder."""
    models_file: Path | None = Path("models.yaml")
    """Model definitions for dispatch; ``None`` serves routing decisions only."""
    build_on_start: bool = False
    """Build (or incrementally rebuild) the index at start-up instead of refusing a stale one."""
    max_batch: int = Field(default=64, ge=1, le=1024)
    batch_wait_ms: float = Field(default=0.0, ge=0.0, le=50.0)
    max_query_chars: int = Field(default=2000, ge=16)
    """Queries are cut to this many characters before embedding; the encoder itself reads at
    most its window (256 word-pieces for all-MiniLM-L6-v2, about 1,000 English characters)."""
    cache_backend: Literal["memory", "redis", "off"] = "memory"
    """The semantic response cache: in-process (default), shared through Redis, or off."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_namespace: str = "intent-router:cache"
    cache_max_entries: int = Field(default=100_000, ge=1)
    max_in_flight: int = Field(default=256, ge=0)
    """Requests served at once (0: no cap); beyond it a short queue, then 503 + Retry-After."""
    max_queue: int | None = Field(default=None, ge=0)
    """Places in the admission queue (default: as many as ``max_in_flight``)."""
    queue_timeout_s: float = Field(default=1.0, ge=0.0, le=60.0)
    """The longest a request waits in the admission queue before its 503."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Request bodies larger than this are refused with 413 before they are read."""
    log_prompts: Literal["off", "redacted", "full"] = "off"
    """Prompt and answer text in logs: none (default), personal data replaced by typed
    placeholders (``observability.redact``), or verbatim."""
    otel: bool = False
    """Export OpenTelemetry traces (one span per request, one per attempt) over OTLP/HTTP;
    needs the ``[otel]`` extra. The endpoint and the service name come from the standard
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``OTEL_SERVICE_NAME`` variables."""
    decision_log: Path | None = None
    """Write one JSON row per request here (the audit trail); ``None``: no decision log."""
    decision_log_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    """Rotate the decision log past this size (``PATH.1`` … ``PATH.<keep>``)."""
    decision_log_keep: int = Field(default=5, ge=0, le=1000)
    """Rotated decision-log files kept."""
    decision_log_queue: int = Field(default=10_000, ge=1)
    """Rows waiting for the writer; beyond it rows are dropped and counted."""
    keys_file: Path | None = None
    """API keys (``intent-router keys``); set, every endpoint but ``/healthz`` needs one."""
    keys_redis_url: str | None = None
    """API keys and rate limits in this Redis, shared by replicas (instead of ``keys_file``)."""
    keys_namespace: str = "intent-router:access"
    """Prefix of the Redis keys that hold API keys and rate-limit buckets."""
