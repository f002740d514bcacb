"""What access control does to one request: model and route permissions, rate limits,
the cache tenant. Pure (no HTTP): the API layer makes one per request, the gateway calls it.

* **Models** (403 ``model_not_allowed``): a pinned model the key may not use is refused
  before anything else happens. For ``model: "auto"`` the routed chain keeps only the
  key's models, in order (the others are skipped, as a fallback would be); when none is
  left the request is refused with 403 naming the route and the key's models. Either
  way, no upstream is called for a model the key may not use.
  A pinned model's fallbacks are likewise cut to the key's models.
* **Routes** (403): a key limited to some routes is refused when ``auto`` routes it
  elsewhere (including to no route). Pinned requests bypass routing: the key's model
  list governs them.
* **Rate limits** (429, sliding windows, see :mod:`intent_router.access.ratelimit`): one
  request and ``estimated input tokens + max_tokens`` (or :data:`DEFAULT_OUTPUT_TOKENS`
  without a ``max_tokens``) are charged up front against the key's RPM and TPM; after the
  answer the token charge is corrected to the real usage (``input + output`` tokens the upstream
  reported; 0 for a cache hit or a failure: no upstream work was bought). A team's limits
  (:class:`TeamLimits`) are charged in the same step: all fit, or nothing is charged.
* **Cache tenant**: a keyed request reads and writes cache entries of its tenant only
  (its team, else its key) unless the route opts into ``cache.shared: true``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from intent_router.access.principal import ANONYMOUS, Principal
from intent_router.access.ratelimit import Bucket, BucketState, RateLimiter, Verdict
from intent_router.errors import PermissionDeniedError, RateLimitedError

DEFAULT_OUTPUT_TOKENS = 256
"""The output tokens a request without ``max_tokens`` is charged up front (corrected after)."""


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``3s``, ``1m30s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _trio(kind: str, state: BucketState) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(state.limit),
        f"x-ratelimit-remaining-{kind}": str(state.remaining),
        f"x-ratelimit-reset-{kind}": duration(state.reset_s),
    }


@dataclass(frozen=True)
class TeamLimits:
    """A team's RPM and TPM, shared by every key of the team (models file ``team_limits``)."""

    rpm: int | None = None
    tpm: int | None = None


@dataclass
class RequestAccess:
    """One request's caller and what access control decided for it."""

    principal: Principal = ANONYMOUS
    limiter: RateLimiter | None = None
    team_limits: TeamLimits | None = None  # the RPM/TPM of the key's team, if it has any
    verdict: Verdict | None = None
    kinds: list[str] = field(default_factory=list)  # "requests"/"tokens" per bucket charged
    buckets: list[Bucket] = field(default_factory=list)
    settled: bool = False

    # -- permissions ---------------------------------------------------------------

    def check_model(self, model: str) -> None:
        """Refuse a pinned model the key may not use (before any work)."""
        allowed = self.principal.models
        if allowed is not None and model not in allowed:
            raise PermissionDeniedError(
                f"the API key '{self.principal.name}' may not use model '{model}' "
                f"(allowed: {', '.join(sorted(allowed))})",
                param="model",
            )

    def allowed(self, chain: Sequence[str]) -> list[str]:
        """The models of ``chain`` this key may use, in order."""
        models = self.principal.models
        return list(chain) if models is None else [m for m in chain if m in models]

    def chain(self, route: str | None, chain: Sequence[str]) -> list[str]:
        """The routed chain this key may use: its models only, in the chain's order."""
        routes = self.principal.routes
        if routes is not None and (route or "none") not in routes:
            raise PermissionDeniedError(
                f"the API key '{self.principal.name}' may not use route '{route or 'none'}' "
                f"(allowed: {', '.join(sorted(routes))})"
            )
        kept = self.allowed(chain)
        if not kept:
            allowed = sorted(self.principal.models or ())
            raise PermissionDeniedError(
                f"route '{route or 'none'}' answers with {', '.join(chain) or 'no model'}; the "
                f"API key '{self.principal.name}' may use only {', '.join(allowed)}",
                param="model",
            )
        return kept

    @property
    def cache_tenant(self) -> str | None:
        """The tenant that owns this request's cache entries; None (anonymous): everyone."""
        return None if self.principal.anonymous else self.principal.tenant

    @property
    def cache_limits(self) -> dict[str, list[str] | None]:
        """The key's models and routes: part of the exact-cache scope, answered before
        routing, so an exact hit never gives a key an answer it could not have asked for."""
        p = self.principal
        return {
            "models": sorted(p.models) if p.models is not None else None,
            "routes": sorted(p.routes) if p.routes is not None else None,
        }

    # -- rate limits ---------------------------------------------------------------

    def _limits(self, tokens: int) -> list[tuple[str, str, Bucket]]:
        """(kind, whose limit, bucket) for every limit of the key and of its team."""
        p, team = self.principal, self.team_limits
        out: list[tuple[str, str, Bucket]] = []
        owners = [(f"API key '{p.name}'", f"key:{p.key_id}", p.rpm, p.tpm)]
        if team is not None and p.team:
            owners.append((f"team '{p.team}'", f"team:{p.team}", team.rpm, team.tpm))
        for owner, prefix, rpm, tpm in owners:
            if rpm is not None:
                out.append(("requests", owner, Bucket(f"{prefix}:rpm", rpm, 1)))
            if tpm is not None:
                out.append(("tokens", owner, Bucket(f"{prefix}:tpm", tpm, max(0, tokens))))
        return out

    async def admit(self, input_tokens: int, max_tokens: int | None) -> None:
        """Charge one request and its worst-case tokens, or raise 429 with the headers."""
        if self.limiter is None:
            return
        tokens = input_tokens + (max_tokens if max_tokens is not None else DEFAULT_OUTPUT_TOKENS)
        limits = self._limits(tokens)
        if not limits:
            return
        buckets = [bucket for _, _, bucket in limits]
        verdict = await self.limiter.acquire(buckets)
        self.verdict, self.kinds = verdict, [kind for kind, _, _ in limits]
        if not verdict.allowed:
            full = [f"{_per_minute(kind)} of the {owner}"
                    for (kind, owner, _), state in zip(limits, verdict.states, strict=True)
                    if state.retry_after_s > 0]  # fmt: skip
            wait = verdict.retry_after_s
            raise RateLimitedError(
                f"rate limit reached: {' and '.join(full)}; retry after {max(1, math.ceil(wait))}s",
                retry_after=wait,
                headers=self.headers(),
            )
        self.buckets = buckets

    async def settle(self, used_tokens: int) -> None:
        """Correct the token charge to what was really used (once; later calls are no-ops)."""
        verdict = self.verdict
        if self.settled or self.limiter is None or verdict is None or not verdict.allowed:
            return  # nothing was charged
        self.settled = True
        entry = verdict.entry
        for kind, bucket in zip(self.kinds, self.buckets, strict=True):
            if kind == "tokens" and used_tokens != bucket.charge:
                await self.limiter.adjust(bucket, entry, max(0, used_tokens))

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers (empty: no limits); with a key's and its
        team's limit of one kind, the one with less room left is reported."""
        tightest: dict[str, BucketState] = {}
        if self.verdict is not None:
            for kind, state in zip(self.kinds, self.verdict.states, strict=True):
                if kind not in tightest or state.remaining < tightest[kind].remaining:
                    tightest[kind] = state
        out: dict[str, str] = {}
        for kind, state in tightest.items():
            out.update(_trio(kind, state))
        return out


def _per_minute(kind: str) -> str:
    return "requests per minute" if kind == "requests" else "tokens per minute"
