"""Scope and exact key: a cached answer is only served for a request that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from intent_router.cache import (
    CacheDefaults,
    CachePolicy,
    CacheScope,
    Directives,
    exact_key,
    normalize_text,
    parse_cache_control,
    resolve_policy,
    skip_reason,
)
from intent_router.errors import ConfigError

BASE: dict[str, Any] = {
    "route": "coding",
    "chain": ["gpt-4o-mini", "claude-haiku"],
    "system": "You are terse.",
    "temperature": 0.2,
    "max_tokens": 256,
    "tools": [{"type": "function", "function": {"name": "run"}}],
    "response_format": {"type": "json_object"},
    "stop": ["\n\n"],
    "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
}


def scope(**changes: Any) -> CacheScope:
    return CacheScope.of(**(BASE | changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"route": "math"},
        {"chain": ["claude-haiku", "gpt-4o-mini"]},
        {"model": "gpt-4o"},
        {"system": "You are verbose."},
        {"system": None},
        {"temperature": 0.7},
        {"max_tokens": 512},
        {"tools": None},
        {"tools": [{"type": "function", "function": {"name": "exec"}}]},
        {"tool_choice": "required"},
        {"response_format": None},
        {"stop": None},
        {"history": []},
        {"history": [{"role": "user", "content": "hey"}, {"role": "assistant", "content": "yo"}]},
        {"extra": {"seed": 7}},
    ],
)
def test_every_answer_changing_part_changes_the_scope(changes: dict[str, Any]) -> None:
    assert scope(**changes).digest != scope().digest
    assert exact_key(scope(**changes), "q") != exact_key(scope(), "q")


def test_equal_requests_share_a_scope_however_spelt() -> None:
    same = scope(temperature=0.2, max_tokens=256, stop="\n\n")
    assert scope(stop=["\n\n"]).digest == same.digest
    assert scope(system="  You   are terse. ").digest == scope().digest
    assert (
        CacheScope.of(route="r", temperature=1).digest
        == CacheScope.of(route="r", temperature=1.0).digest
    )


def test_normalised_text_is_the_exact_key() -> None:
    s = scope()
    assert exact_key(s, "What is  the Capital of France?") == exact_key(
        s, "what is the capital of france"
    )
    assert exact_key(s, "“Hello” — world!!") == exact_key(s, '"hello" - world')
    assert exact_key(s, "explain C++") != exact_key(s, "explain C")
    assert exact_key(s, "convert 5.0 USD") != exact_key(s, "convert 50 USD")
    assert normalize_text("  Why  is the sky blue ??  ") == "why is the sky blue"


def test_route_policy_merges_over_defaults() -> None:
    defaults = CacheDefaults(policy=CachePolicy(threshold=0.9, ttl_s=60))
    assert resolve_policy(None, defaults) == defaults.policy
    merged = resolve_policy({"ttl_s": 5, "enabled": False}, defaults)
    assert (merged.ttl_s, merged.enabled, merged.threshold) == (5, False, 0.9)


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"treshold": 0.9}, "cache.treshold"),
        ({"threshold": 1.5}, "cache.threshold"),
        ({"ttl_s": 0}, "cache.ttl_s"),
        ({"threshold": 0.8, "stale_threshold": 0.95}, "cache"),
    ],
)
def test_bad_route_policy_names_the_field(mapping: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_policy(mapping, CacheDefaults())
    assert info.value.field == field


def test_stale_grace_only_counts_when_stale_is_allowed() -> None:
    assert CachePolicy(ttl_s=10, stale_grace_s=100).keep_s == 10
    assert CachePolicy(ttl_s=10, stale_grace_s=100, stale_if_error=True).keep_s == 110


def test_cache_control_directives() -> None:
    assert parse_cache_control(None) == Directives()
    assert parse_cache_control("no-cache") == Directives(no_cache=True)
    assert parse_cache_control("max-age=0, No-Store") == Directives(no_store=True)
    assert parse_cache_control("no-store").may_serve  # looked up, just not stored
    assert not parse_cache_control("no-cache").may_serve
    assert parse_cache_control("max-age=60").may_serve


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({}, None),
        ({"policy": CachePolicy(enabled=False)}, "disabled"),
        ({"directives": Directives(no_store=True)}, "no-store"),
        ({"directives": Directives(no_cache=True)}, "no-cache"),
        ({"status": 502}, "status"),
        ({"complete": False}, "incomplete"),
        ({"finish_reason": "length"}, "finish-reason"),
        ({"finish_reason": "end_turn"}, None),
        ({"choices": 2}, "choices"),
        ({"temperature": 1.5}, "temperature"),
        ({"temperature": 1.0}, None),
    ],
)
def test_store_rules(kwargs: dict[str, Any], reason: str | None) -> None:
    args: dict[str, Any] = {"policy": CachePolicy(), "defaults": CacheDefaults()} | kwargs
    assert skip_reason(**args) == reason
