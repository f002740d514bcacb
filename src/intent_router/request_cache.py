"""The response cache as chat requests meet it: scopes, policies, what is stored and served.

:class:`RequestCache` turns a :class:`ChatRequest` and its routing into cache scopes, picks
the route's policy, and applies the store rules; the gateway calls it around dispatch.
Two scopes per request:

* the **early** scope, known before routing (the request plus a fingerprint of the routing
  configuration: index, thresholds, chains, policies). Routing is deterministic for that
  configuration, so the exact tier is keyed on it and an exact repeat is answered before
  the query is embedded;
* the **routed** scope (route, chain or pinned model, and the same request parts), inside
  which the semantic tier searches, so a cached answer never crosses routes.

With API keys on, both scopes carry the caller's **tenant** (its team, else its key): two
tenants never share an answer. A route with ``cache.shared: true`` leaves the tenant out of
its routed scope, so its answers are served to everyone (through the semantic tier: the
early scope, known before the route is, always carries the tenant, and the key's model
and route lists, so an exact hit never serves a key an answer it could not have asked for).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from intent_router.cache import (
    CacheDefaults,
    CacheHit,
    CachePolicy,
    CacheScope,
    Directives,
    ResponseCache,
    resolve_policy,
    skip_reason,
)
from intent_router.cache.keys import normalize_text
from intent_router.errors import ConfigError, RouteFileError
from intent_router.observability.metrics import Metrics
from intent_router.providers import ChatRequest, ChatResponse, Choice, Message
from intent_router.routing.loader import RouteSet
from intent_router.routing.matcher import Matcher

CACHED_FIELDS = ("text", "finish_reason", "input_tokens", "output_tokens", "model",
                 "upstream_model", "provider")  # fmt: skip
ANSWER_FIELDS = ("choices", "usage_details")  # stored too; absent in entries of older versions
EARLY_ROUTE = "auto"


@dataclass(frozen=True)
class CacheInfo:
    """How a response relates to the cache: ``hit`` is exact/semantic/stale or None."""

    hit: str | None
    similarity: float | None = None
    age_s: float | None = None
    stored: bool = False
    skipped: str | None = None  # why the cache was not consulted or not written

    def to_dict(self) -> dict[str, Any]:
        return {
            "hit": self.hit,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "stored": self.stored,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class CacheContext:
    """A routed request's scope and policy, and what its headers allow."""

    scope: CacheScope
    policy: CachePolicy
    directives: Directives
    temperature: float | None


class RequestCache:
    """Scopes, per-route policies and store rules over one :class:`ResponseCache`.

    Lookups are counted in ``intent_router_cache_lookups_total`` {tier, result}. When the
    cache is off the pipeline holds a :class:`intent_router.cache_off.NullCache` instead.
    """

    uses_vectors = True  # a pinned request is embedded for the semantic tier

    def __init__(
        self,
        cache: ResponseCache,
        routes: RouteSet,
        matcher: Matcher,
        *,
        default_chain: list[str],
        index_fingerprint: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        defaults: CacheDefaults = cache.defaults
        self.policies: dict[str, CachePolicy] = {"none": defaults.policy}
        for route in routes.routes:
            try:
                self.policies[route.name] = resolve_policy(route.cache, defaults)
            except ConfigError as exc:
                path = routes.sources.get(route.name)
                raise RouteFileError(exc.message, path=path, field=exc.field) from exc
        config = [
            index_fingerprint,
            matcher.names,
            matcher.thresholds.tolist(),
            matcher.chains,
            default_chain,
            {name: p.model_dump() for name, p in sorted(self.policies.items())},
        ]
        blob = json.dumps(config, sort_keys=True, default=str).encode()
        self.routing_fingerprint = hashlib.sha256(blob).hexdigest()[:16]

    def early_scope(
        self,
        request: ChatRequest,
        pinned: str | None,
        *,
        tenant: str | None = None,
        limits: dict[str, list[str] | None] | None = None,
    ) -> CacheScope:
        extra: dict[str, Any] = {"routing": self.routing_fingerprint}
        if tenant is not None:
            extra.update(tenant=tenant, limits=limits)
        return _scope(request, route=EARLY_ROUTE, chain=[], pinned=pinned, extra=extra)

    def context(
        self,
        request: ChatRequest,
        *,
        route: str | None,
        chain: list[str],
        pinned: str | None,
        directives: Directives,
        early: CacheScope,
        lang: str | None = None,
        tenant: str | None = None,
    ) -> CacheContext:
        """The routed scope; ``lang`` (when the encoder identifies it) keeps a question and
        its translation apart: an answer is in the language it was asked in. ``tenant``
        (None: anonymous) keeps tenants apart unless the route's cache is ``shared``."""
        name = route or "none"
        policy = self.policies.get(name, self.policies["none"])
        extra: dict[str, Any] = {"lang": lang} if lang else {}
        if tenant is not None and not policy.shared:
            extra["tenant"] = tenant
        scope = _scope(request, route=name, chain=chain, pinned=pinned, extra=extra or None)
        return CacheContext(
            dataclasses.replace(scope, exact=early.digest), policy, directives, request.temperature
        )

    async def lookup_exact(
        self, early: CacheScope, text: str, directives: Directives
    ) -> CacheHit | None:
        hit = None
        if directives.may_serve:
            hit = _servable(await self.cache.lookup_exact(early, text), text)
        self._count("exact", "miss" if hit is None else "hit")
        return hit

    async def lookup(self, ctx: CacheContext, text: str, vector: np.ndarray) -> CacheHit | None:
        hit = await self._search(ctx, text, vector, relaxed=False)
        self._count("semantic", "miss" if hit is None else "hit")
        return hit

    async def stale(self, ctx: CacheContext, text: str, vector: np.ndarray) -> CacheHit | None:
        """Stale-if-error: the closest answer under the relaxed threshold, if the route opts in."""
        if not ctx.policy.stale_if_error:
            return None
        hit = await self._search(ctx, text, vector, relaxed=True)
        if hit is not None:
            self._count("semantic", "stale")
        return hit

    async def _search(
        self, ctx: CacheContext, text: str, vector: np.ndarray, *, relaxed: bool
    ) -> CacheHit | None:
        if not ctx.directives.may_serve:
            return None
        hit = await self.cache.lookup(ctx.scope, text, vector, ctx.policy, relaxed=relaxed)
        return _servable(hit, text)

    def _count(self, tier: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.cache_lookups.labels(tier, result).inc()

    async def store(
        self,
        ctx: CacheContext,
        text: str,
        vector: np.ndarray,
        response: ChatResponse,
        *,
        route: str | None,
        chain: list[str],
    ) -> CacheInfo:
        reason = skip_reason(
            policy=ctx.policy,
            defaults=self.cache.defaults,
            directives=ctx.directives,
            temperature=ctx.temperature,
            finish_reason=_finish(response),
            choices=len(response.choices),
        )
        if reason is not None:
            return CacheInfo(hit=None, skipped=reason)
        payload: dict[str, Any] = {name: getattr(response, name) for name in CACHED_FIELDS}
        payload["choices"] = [c.to_dict() for c in response.choices]
        payload.update(route=route, chain=chain, usage_details=response.usage_details)
        stored = await self.cache.store(ctx.scope, text, vector, payload, ctx.policy)
        return CacheInfo(hit=None, stored=stored)


def _finish(response: ChatResponse) -> str:
    """The finish reason the store rules judge: a tool call is a complete answer (it is
    served only for the very same question, see :func:`_servable`)."""
    reasons = [c.finish_reason for c in response.choices]
    cut = [r for r in reasons if r not in ("stop", "tool_calls")]
    return cut[0] if cut else "stop"


def _servable(hit: CacheHit | None, text: str) -> CacheHit | None:
    """Tool calls are served only for the same question, never for a similar one.

    A tool call's arguments are taken from the question ("weather in Paris" calls
    ``get_weather(city="Paris")``), so a semantic neighbour ("… in Lyon") must not get it.
    """
    if hit is None or normalize_text(hit.cached_query) == normalize_text(text):
        return hit
    calls = any(c.get("tool_calls") for c in hit.payload.get("choices") or ())
    return None if calls else hit


def response_from(
    hit: CacheHit, *, route: str | None, started: float, kind: str | None = None
) -> tuple[ChatResponse, CacheInfo]:
    """The standardized response for a cache hit: no model called, nothing spent."""
    fields = {name: hit.payload[name] for name in CACHED_FIELDS}
    choices = tuple(Choice.from_dict(c) for c in hit.payload.get("choices") or ())
    response = ChatResponse(
        **fields,
        choices=choices,
        usage_details=hit.payload.get("usage_details"),
        route=route,
        cost_usd=0.0,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        attempts=(),
    )
    return response, CacheInfo(hit=kind or hit.kind, similarity=hit.similarity, age_s=hit.age_s)


def _turn(message: Message) -> dict[str, Any]:
    """One message as the scope hashes it: role, text or parts, name, tool payloads."""
    turn: dict[str, Any] = {"role": message.role}
    if isinstance(message.content, str) or message.content is None:
        turn["content"] = message.content
    else:
        turn["content"] = [dataclasses.asdict(p) | {"kind": type(p).__name__}
                           for p in message.content]  # fmt: skip
    if message.name is not None:
        turn["name"] = message.name
    if message.tool_calls:
        turn["tool_calls"] = [dataclasses.asdict(c) for c in message.tool_calls]
    if message.tool_call_id is not None:
        turn["tool_call_id"] = message.tool_call_id
    return turn


def _scope(
    request: ChatRequest,
    *,
    route: str,
    chain: list[str],
    pinned: str | None,
    extra: dict[str, Any] | None,
) -> CacheScope:
    """Everything that changes the answer, except the text of the question asked.

    Derived from the canonical request: every earlier or later turn whole (tool calls,
    tool results, images), the asked message's images and name, and every parameter of
    :meth:`ChatRequest.answer_fields` (tools, tool_choice, response_format, n, seed,
    top_p, penalties, logit_bias, logprobs, ``extra`` …).
    """
    asked = request.asked_index()
    system = "\n".join(m.text() for m in request.messages if m.role == "system")
    history = [
        _turn(m) for i, m in enumerate(request.messages) if m.role != "system" and i != asked
    ]
    fields = request.answer_fields()
    rest = {k: v for k, v in fields.items()
            if k not in ("temperature", "max_tokens", "stop", "tools", "tool_choice",
                         "response_format")}  # fmt: skip
    if asked is not None:
        asked_turn = _turn(request.messages[asked])
        if asked_turn["content"] and not isinstance(asked_turn["content"], str):
            rest["asked_parts"] = [p for p in asked_turn["content"] if p["kind"] != "TextPart"]
        if "name" in asked_turn:
            rest["asked_name"] = asked_turn["name"]
    rest.update(extra or {})
    return CacheScope.of(
        route=route,
        chain=chain,
        model=pinned,
        system=system or None,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        stop=list(request.stop),
        history=history,
        tools=fields.get("tools"),
        tool_choice=fields.get("tool_choice"),
        response_format=fields.get("response_format"),
        extra=rest or None,
    )
