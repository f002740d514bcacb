"""One configuration of the router: what the route and models files said, built and checked.

A :class:`Configuration` holds what depends on those files: the router service (routes,
index, matcher, its encoder batcher) and the request path's
:class:`~intent_router.pipeline.runtime.Runtime` (router service, models, dispatcher,
request cache). What outlives a configuration (the encoder, the HTTP client, the response
cache, the decision log, the metrics) is :class:`Shared` and handed in. A request captures
one configuration when it starts and finishes on it, so a reload
(:mod:`intent_router.reload`) swaps configurations by replacing references.

:func:`load_configuration` reads and checks the files exactly as start-up does — route
files, models file, chains against models, the index against the routes and the encoder —
and may build the index (incrementally, into a new build folder: the running index is in
memory and its files are never rewritten). It blocks: call it in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from intent_router.access.budget import BudgetLedger
from intent_router.cache import ResponseCache
from intent_router.config import Settings
from intent_router.dispatch import Dispatcher
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import RouteIndex
from intent_router.errors import StaleIndexError
from intent_router.models import ModelsConfig, load_models
from intent_router.observability.decision_log import DecisionLog
from intent_router.observability.metrics import Metrics
from intent_router.pipeline.runtime import Runtime
from intent_router.routing.loader import RouteSet, load_routes
from intent_router.service import RouterService, prepare_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shared:
    """The long-lived resources every configuration uses; owned by the server's lifespan."""

    settings: Settings
    encoder: Encoder
    metrics: Metrics
    client: httpx.AsyncClient | None = None
    cache: ResponseCache | None = None
    decision_log: DecisionLog | None = None
    ledger: BudgetLedger | None = None  # budgets: spend outlives every configuration
    on_activate: Callable[[ModelsConfig | None], None] | None = None
    """Told the models file of each configuration that starts serving (e.g. team limits)."""


@dataclass(frozen=True)
class Version:
    """A configuration's identity: fingerprints of the routes, the models and the index."""

    fingerprint: str
    routes: str
    models: str | None
    index: str
    loaded_at: float  # wall clock

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "routes_fingerprint": self.routes,
            "models_fingerprint": self.models,
            "index_fingerprint": self.index,
            "loaded_at": round(self.loaded_at, 3),
            "loaded_at_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }


@dataclass(frozen=True)
class Loaded:
    """The checked contents of the route and models files, with the index built for them."""

    routes: RouteSet
    models: ModelsConfig | None
    index: RouteIndex
    version: Version


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def routes_fingerprint(routes: RouteSet) -> str:
    """Everything the route files say (chains, thresholds, cache policies included)."""
    rows = [r.model_dump(mode="json") for r in (*routes.routes, *routes.none_routes)]
    return _digest(json.dumps(rows, sort_keys=True))


def index_fingerprint(index: RouteIndex) -> str:
    """The build in use and the thresholds fitted on it."""
    build = index.folder.name if index.folder is not None else "unsaved"
    thresholds = json.dumps(index.thresholds.to_json(), sort_keys=True)
    return _digest(build, index.manifest["routes_fingerprint"], thresholds)


def load_configuration(
    settings: Settings, encoder: Encoder, *, build: bool, clock: Any = time.time
) -> Loaded:
    """Read and check the route and models files; load (or with ``build``, incrementally
    build) the index for them. Raises the error of the first problem (file, line, field)."""
    routes = load_routes(settings.routes_dir)
    models = load_models(settings.models_file) if settings.models_file is not None else None
    index = prepare_index(settings, encoder, routes, build=build)
    if index.manifest["routes_fingerprint"] != routes.fingerprint:  # a build raced this one
        raise StaleIndexError(f"index {index.folder} does not match the route files")
    if models is not None:
        models.check_routes(routes.routes)
    models_fp = _digest(models.model_dump_json()) if models is not None else None
    route_fp, index_fp = routes_fingerprint(routes), index_fingerprint(index)
    version = Version(
        fingerprint=_digest(route_fp, models_fp or "no models", index_fp),
        routes=route_fp,
        models=models_fp,
        index=index_fp,
        loaded_at=clock(),
    )
    return Loaded(routes=routes, models=models, index=index, version=version)


class Configuration:
    """The objects of one configuration. ``start`` before use, ``aclose`` when retired.

    ``runtime`` is what the request path reads (None when the server routes only)."""

    def __init__(self, loaded: Loaded, shared: Shared) -> None:
        self.loaded = loaded
        self.shared = shared
        models = loaded.models
        self.service = RouterService(
            shared.settings, shared.encoder, loaded.routes, loaded.index,
            default_chain=models.default_chain if models else None, metrics=shared.metrics,
        )  # fmt: skip
        self.runtime: Runtime | None = None
        if models is not None and shared.client is not None:
            dispatcher = Dispatcher(models, shared.client, metrics=shared.metrics)
            try:  # a route's cache policy may still be refused here
                self.runtime = Runtime.build(
                    self.service, models, dispatcher, shared.cache, shared.metrics, shared.ledger
                )
            except Exception:
                dispatcher.attach_metrics(False)
                raise
        self._closed = False

    @property
    def version(self) -> Version:
        return self.loaded.version

    @property
    def dispatcher(self) -> Dispatcher | None:
        return self.runtime.dispatcher if self.runtime is not None else None

    def inherit(self, old: Configuration) -> None:
        """Carry ``old``'s resilience state over (models whose definition did not change)."""
        if self.dispatcher is not None and old.dispatcher is not None:
            self.dispatcher.inherit(old.dispatcher)

    def activate(self, previous: Configuration | None = None) -> None:
        """This configuration now serves: its routes and gauges are what ``/metrics`` shows."""
        if previous is not None and previous.dispatcher is not None:
            previous.dispatcher.attach_metrics(False)
        self.shared.metrics.declare_routes(self.service.routes.names)
        if self.shared.on_activate is not None:
            self.shared.on_activate(self.loaded.models)
        if self.dispatcher is not None:
            self.shared.metrics.declare_models(sorted(self.dispatcher.models.models))
            self.dispatcher.attach_metrics(True)

    async def start(self) -> None:
        await self.service.start()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.dispatcher is not None:
            self.dispatcher.attach_metrics(False)
        await self.service.aclose()
