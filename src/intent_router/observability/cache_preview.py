"""What the response cache would do for a query, without serving, storing or counting.

For the operator console: the scope is that of ``POST /complete {"query"}`` (one user
message, default parameters) in the query's route; the answer is the nearest cached
question of that scope, its cosine, the route's threshold, the verifier's verdict and the
resulting action. Entry freshness is not read (that would touch the LRU order), so an
expired entry may still show as a hit. The cached question is shown redacted: it is
another user's text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from intent_router.cache import Directives, exact_key
from intent_router.cache_off import NullCache
from intent_router.errors import CacheError
from intent_router.observability.redact import redact
from intent_router.providers import ChatRequest, Message
from intent_router.request_cache import RequestCache


async def preview_cache(
    cache: RequestCache | NullCache | None,
    text: str,
    vector: np.ndarray,
    *,
    route: str | None,
    chain: list[str],
) -> dict[str, Any]:
    if not isinstance(cache, RequestCache):  # no gateway, or the cache is off
        return {"enabled": False, "action": "off", "reason": "the response cache is off"}
    request = ChatRequest(messages=[Message(role="user", content=text)])
    early = cache.early_scope(request, None)
    ctx = cache.context(
        request, route=route, chain=chain, pinned=None, directives=Directives(), early=early
    )
    policy = ctx.policy
    result: dict[str, Any] = {
        "enabled": policy.enabled,
        "scope": route or "none",
        "threshold": policy.threshold,
        "nearest": None,
    }
    if not policy.enabled:
        return {**result, "action": "off", "reason": f"caching is off for route {route}"}
    store = cache.cache
    try:
        candidates = await store.backend.nearest(ctx.scope.digest, vector, 1, -1.0)
    except CacheError as exc:
        return {**result, "action": "miss", "reason": f"the cache backend is unavailable: {exc}"}
    if not candidates:
        return {**result, "action": "miss", "reason": "nothing cached in this scope yet"}
    best = candidates[0]
    verdict = store.verifier.verify(text, best.text)
    result["nearest"] = {
        "text": redact(best.text)[0],
        "similarity": round(best.similarity, 4),
        "verified": verdict.ok,
        "failed_check": verdict.failed,
    }
    if best.key == exact_key(ctx.scope, text):
        return {**result, "action": "exact", "reason": "the same question is cached"}
    if best.similarity < policy.threshold:
        reason = f"nearest similarity {best.similarity:.3f} < threshold {policy.threshold:.2f}"
        return {**result, "action": "miss", "reason": reason}
    if store.defaults.verify and not verdict.ok:
        return {**result, "action": "miss", "reason": f"the verifier refuses: {verdict.failed}"}
    return {**result, "action": "semantic", "reason": "a close, verified question is cached"}
