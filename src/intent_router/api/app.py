"""The FastAPI application: ``create_app`` + a lifespan that owns every long-lived resource."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypedDict

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from intent_router.access.spending import open_ledger
from intent_router.api import (
    access,
    admin,
    admin_keys,
    admission,
    completions,
    console,
    errors,
    messages,
    rollouts,
)
from intent_router.api.request_id import RequestIdMiddleware
from intent_router.api.routes import router
from intent_router.cache import (
    CacheDefaults,
    MemoryBackend,
    ModelVerifier,
    RedisBackend,
    ResponseCache,
)
from intent_router.cache.by_language import ByLanguage
from intent_router.cache.verify import Verifier
from intent_router.config import Settings
from intent_router.configuration import Configuration, Loaded, Shared, load_configuration
from intent_router.embedding.choice import load_encoder
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.langid import ENGLISH
from intent_router.gateway import Gateway
from intent_router.models import ModelsConfig
from intent_router.observability.decision_log import DecisionLog
from intent_router.observability.metrics import Metrics
from intent_router.observability.tracing import Tracer, make_tracer
from intent_router.reload import Reloader, install_reload_signal


class State(TypedDict):
    reloader: Reloader  # the configuration in use (read once per request), reloads, rollback
    gateway: Gateway | None  # the chat endpoints; its ``runtime`` is swapped by reloads


def create_app(
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    reload_signal: bool = False,
    tracer: Tracer | None = None,
    loaded: Loaded | None = None,
) -> FastAPI:
    """Build the app; the encoder, index and clients are loaded when the lifespan starts.

    ``encoder`` lets a caller that already loaded the model (the CLI, tests) share it, and
    ``loaded`` a configuration it already read and checked (the CLI, before binding).
    ``reload_signal`` (the CLI server) makes ``SIGHUP`` reload the route and models files;
    ``tracer`` replaces the one ``settings.otel`` asks for (the app shuts it down).
    """

    metrics = Metrics()  # this app's own registry (many apps may share a process)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        model = encoder or load_encoder(settings.encoder)
        first_loaded = loaded or load_configuration(
            settings, model, build=settings.build_on_start
        )
        dispatching = first_loaded.models is not None
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
        cache = make_cache(settings, model) if dispatching else None
        if cache is not None:
            await cache.start()
        ledger = (  # budget settings are read at start-up; reloads keep this ledger
            open_ledger(first_loaded.models, keys_file=settings.keys_file,
                        redis_url=settings.keys_redis_url, namespace=settings.keys_namespace)
            if first_loaded.models
            else None
        )  # fmt: skip
        async with httpx.AsyncClient(limits=limits, timeout=None) as client:
            decisions = make_decision_log(settings, metrics) if dispatching else None
            if decisions is not None:
                decisions.start()
            shared = Shared(settings, model, metrics, client, cache, decisions, ledger,
                            on_activate=partial(set_team_limits, control))  # fmt: skip
            first = Configuration(first_loaded, shared)
            first.activate()
            await first.start()
            ids = upstream_ids(first_loaded.models)
            traces = tracer or make_tracer(settings.otel and dispatching, ids)
            gateway = None
            if first.runtime is not None:  # reloads swap gateway.runtime
                gateway = Gateway(first.runtime, metrics=metrics, decision_log=decisions,
                                  log_prompts=settings.log_prompts, tracer=traces)  # fmt: skip
            reloader = Reloader(shared, first, gateway=gateway)
            app.state.reloader = reloader  # for sections other features add to /admin/config
            if gateway is not None:  # the serving runtime's, read at each request
                reloader.sections["rollouts"] = partial(rollouts.describe, gateway)
            stop_signal = install_reload_signal(reloader) if reload_signal else None
            try:
                yield {"reloader": reloader, "gateway": gateway}
            finally:
                if stop_signal is not None:
                    stop_signal()
                if gateway is not None:
                    await gateway.aclose()
                await reloader.aclose()
                traces.shutdown()  # flushes the spans still queued
                if control is not None:
                    await control.aclose()
                if ledger is not None:
                    await ledger.aclose()  # the spend file gets its last write
                if decisions is not None:
                    await decisions.aclose()
                if cache is not None:
                    await cache.aclose()

    app = FastAPI(title="intent-router", version="0.1.0", lifespan=lifespan)
    app.state.metrics = metrics
    app.include_router(router)
    app.include_router(completions.router)
    app.include_router(messages.router)
    app.include_router(console.router)
    app.include_router(admin.router)
    app.include_router(admin_keys.router)
    app.include_router(rollouts.router)
    errors.install(app)
    admission.install(app, settings, metrics)
    control = access.install(app, settings)  # outside admission: a key's priority orders it
    app.add_middleware(RequestIdMiddleware)  # outermost: refusals at the edge carry the id too
    app.openapi = partial(openapi_schema, app)  # type: ignore[method-assign]
    return app


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema without its 422 answers: validation errors are 400s here."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def set_team_limits(control: access.AccessControl | None, models: ModelsConfig | None) -> None:
    """A configuration starts serving: the keys' teams get its models file's limits."""
    if control is not None and models is not None:
        control.teams = access.team_limits(models)


def make_cache(settings: Settings, encoder: Encoder) -> ResponseCache | None:
    """The response cache of one encoder's vectors: the Redis namespace names the encoder,
    so replicas running different encoders never mix vector spaces."""
    dimension = encoder.dimension
    defaults = CacheDefaults(max_entries=settings.cache_max_entries)
    if settings.cache_backend == "off":
        return None
    if settings.cache_backend == "redis":
        backend: MemoryBackend | RedisBackend = RedisBackend(
            settings.redis_url,
            namespace=f"{settings.cache_namespace}:{encoder_slug(encoder)}",
            dim=dimension,
            max_entries=settings.cache_max_entries,
        )
    else:
        backend = MemoryBackend(dim=dimension, max_entries=settings.cache_max_entries)
    if not encoder.has_word_vectors:  # the pair model reads MiniLM word vectors: rules only
        return ResponseCache(backend, defaults=defaults)
    verifier: Verifier = ModelVerifier(encoder.word_vectors)
    if len(encoder.blocks) > 1:  # the hybrid: the pair model for English, rules for the rest
        verifier = ByLanguage(partial(_is_english, encoder), verifier)
    return ResponseCache(backend, verifier=verifier, defaults=defaults)


def _is_english(encoder: Encoder, text: str) -> bool:
    return encoder.languages([text])[0] == ENGLISH


def encoder_slug(encoder: Encoder) -> str:
    return hashlib.sha256(encoder.id.encode()).hexdigest()[:12]


def make_decision_log(settings: Settings, metrics: Metrics) -> DecisionLog | None:
    if settings.decision_log is None:
        return None
    return DecisionLog(
        settings.decision_log,
        metrics,
        max_bytes=settings.decision_log_max_bytes,
        keep=settings.decision_log_keep,
        max_queue=settings.decision_log_queue,
    )


def upstream_ids(models: ModelsConfig | None) -> dict[str, str]:
    """Each model name's upstream model id (what a trace's attempt span names)."""
    return {name: spec.model for name, spec in models.models.items()} if models else {}
