"""The semantic response cache: exact and verified-semantic hits, in memory or in Redis.

A cached answer is served only for the same :class:`CacheScope` (route, chain or pinned
model, system prompt, sampling parameters, tools, earlier turns) and either the same
normalised question (exact) or a question close by cosine that the :class:`Verifier`
agrees asks the same thing (semantic). It may miss; it must not lie.

Typical use (the service)::

    cache = ResponseCache(MemoryBackend(max_entries=defaults.max_entries), defaults=defaults)
    await cache.start()
    scope = CacheScope.of(route=route.name, chain=route.chain, system=system, ...)
    hit = await cache.lookup(scope, question, query_vector, policy)
    ...
    if skip_reason(policy=policy, defaults=defaults, temperature=t, finish_reason=fr) is None:
        await cache.store(scope, question, query_vector, response_dict, policy)
"""

from intent_router.cache.backend import CacheBackend
from intent_router.cache.entry import CacheEntry, CacheHit, Candidate, HitKind
from intent_router.cache.keys import CacheScope, exact_key, normalize_text
from intent_router.cache.memory import LocalStore, MemoryBackend
from intent_router.cache.pairmodel import ModelVerifier, PairModel
from intent_router.cache.policy import (
    CacheDefaults,
    CachePolicy,
    RouteCachePolicy,
    resolve_policy,
)
from intent_router.cache.redis_backend import RedisBackend
from intent_router.cache.rules import Directives, parse_cache_control, skip_reason
from intent_router.cache.semantic import VectorIndex
from intent_router.cache.store import ResponseCache
from intent_router.cache.verify import AcceptAll, Verdict, Verifier

__all__ = [
    "AcceptAll",
    "CacheBackend",
    "CacheDefaults",
    "CacheEntry",
    "CacheHit",
    "CachePolicy",
    "CacheScope",
    "Candidate",
    "Directives",
    "HitKind",
    "LocalStore",
    "MemoryBackend",
    "ModelVerifier",
    "PairModel",
    "RedisBackend",
    "ResponseCache",
    "RouteCachePolicy",
    "VectorIndex",
    "Verdict",
    "Verifier",
    "exact_key",
    "normalize_text",
    "parse_cache_control",
    "resolve_policy",
    "skip_reason",
]
