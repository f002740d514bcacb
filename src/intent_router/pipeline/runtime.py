"""What one configuration serves with: the :class:`Runtime` the gateway holds in ONE attribute.

Everything a request needs that comes from the routes and models files (router service,
models config, dispatcher, request cache) is here, so a request reads it ONCE, at its
start (:attr:`Exchange.runtime`), and finishes on it even if the gateway's runtime is
replaced meanwhile. Reload is that replacement: build a new Runtime, then assign
``gateway.runtime = new`` (one reference swap; see :class:`intent_router.gateway.Gateway`).
"""

from __future__ import annotations

from dataclasses import dataclass

from intent_router.access.budget import BudgetLedger, NullLedger
from intent_router.access.spending import Spending
from intent_router.cache import ResponseCache
from intent_router.cache_off import NullCache
from intent_router.dispatch import Dispatcher
from intent_router.models import ModelsConfig
from intent_router.observability.metrics import Metrics
from intent_router.request_cache import RequestCache
from intent_router.service import RouterService


@dataclass(frozen=True)
class Runtime:
    """The per-configuration collaborators of the request path; never mutated."""

    router: RouterService
    models: ModelsConfig
    dispatcher: Dispatcher
    cache: RequestCache | NullCache
    spending: Spending  # budgets, downgrade, PII gate (its ledger outlives the runtime)

    @classmethod
    def build(
        cls,
        router: RouterService,
        models: ModelsConfig,
        dispatcher: Dispatcher,
        cache: ResponseCache | None,
        metrics: Metrics | None,
        ledger: BudgetLedger | None = None,
    ) -> Runtime:
        """The runtime of one configuration; ``cache=None`` (cache off) gives a NullCache,
        ``ledger=None`` (no keys) a ledger that budgets nothing."""
        spending = Spending(ledger if ledger is not None else NullLedger(), models)
        if cache is None:
            return cls(router, models, dispatcher, NullCache(), spending)
        request_cache = RequestCache(
            cache,
            router.routes,
            router.matcher,
            default_chain=models.default_chain,
            # The encoder is part of every scope: vectors of two encoders never meet.
            index_fingerprint=f"{router.index.manifest['routes_fingerprint']}|{router.encoder.id}",
            metrics=metrics,
        )
        return cls(router, models, dispatcher, request_cache, spending)
