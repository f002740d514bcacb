"""When may a response be stored or a cached one served? Pure helpers for the service.

HTTP-level decisions stay in the service; these functions just make them one-liners and
testable: ``Cache-Control: no-cache`` bypasses the cache (nothing served from it, nothing
stored), ``no-store`` may be answered from the cache but its answer is not stored; the
temperature limit; failed or truncated responses.
"""

from __future__ import annotations

from dataclasses import dataclass

from intent_router.cache.policy import CacheDefaults, CachePolicy

CACHEABLE_FINISH = frozenset({"stop", "end_turn", "stop_sequence", "STOP"})
"""Finish reasons of a complete answer (OpenAI, Anthropic, Gemini spellings)."""


@dataclass(frozen=True, slots=True)
class Directives:
    """The request's ``Cache-Control`` as far as the response cache is concerned."""

    no_cache: bool = False
    no_store: bool = False

    @property
    def may_serve(self) -> bool:
        return not self.no_cache


def parse_cache_control(header: str | None) -> Directives:
    """Read ``no-cache`` / ``no-store`` from a ``Cache-Control`` header value."""
    if not header:
        return Directives()
    tokens = {part.strip().split("=", 1)[0].lower() for part in header.split(",")}
    return Directives(no_cache="no-cache" in tokens, no_store="no-store" in tokens)


def skip_reason(
    *,
    policy: CachePolicy,
    defaults: CacheDefaults,
    directives: Directives = Directives(),
    temperature: float | None = None,
    status: int = 200,
    finish_reason: str | None = "stop",
    complete: bool = True,
    choices: int = 1,
) -> str | None:
    """Why this response must not be stored, or None if it may be."""
    if not policy.enabled:
        return "disabled"
    if directives.no_store:
        return "no-store"
    if directives.no_cache:
        return "no-cache"
    if status != 200:
        return "status"
    if not complete:
        return "incomplete"
    if finish_reason is not None and finish_reason not in CACHEABLE_FINISH:
        return "finish-reason"
    if choices != 1:
        return "choices"
    if temperature is not None and temperature > defaults.max_cacheable_temperature:
        return "temperature"
    return None
