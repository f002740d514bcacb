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

from intent_router.api import admission, completions, console, errors, messages
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
from intent_router.dispatch import Dispatcher
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.langid import ENGLISH
from intent_router.gateway import Gateway
from intent_router.models import load_models
from intent_router.observability.decision_log import DecisionLog
from intent_router.observability.metrics import Metrics
from intent_router.service import RouterService


class State(TypedDict):
    service: RouterService
    gateway: Gateway | None


def create_app(settings: Settings, *, encoder: Encoder | None = None) -> FastAPI:
    """Build the app; the encoder, index and clients are loaded when the lifespan starts.

    ``encoder`` lets a caller that already loaded the model (the CLI, tests) share it.
    """

    metrics = Metrics()  # this app's own registry (many apps may share a process)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        models = load_models(settings.models_file) if settings.models_file else None
        service = RouterService.from_settings(
            settings, encoder, default_chain=models.default_chain if models else None,
            metrics=metrics,
        )  # fmt: skip
        if models is not None:
            models.check_chains({r.name: r.chain for r in service.routes.routes})
        await service.start()
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
        cache = make_cache(settings, service.encoder) if models else None
        if cache is not None:
            await cache.start()
        async with httpx.AsyncClient(limits=limits, timeout=None) as client:
            dispatcher = Dispatcher(models, client, metrics=metrics) if models else None
            decisions = make_decision_log(settings, metrics) if dispatcher else None
            if decisions is not None:
                decisions.start()
            gateway = (
                Gateway(service, models, dispatcher, cache, metrics=metrics,
                        decision_log=decisions, log_prompts=settings.log_prompts)
                if models and dispatcher
                else None
            )  # fmt: skip
            try:
                yield {"service": service, "gateway": gateway}
            finally:
                if decisions is not None:
                    await decisions.aclose()
                if cache is not None:
                    await cache.aclose()
                await service.aclose()

    app = FastAPI(title="intent-router", version="0.1.0", lifespan=lifespan)
    app.state.metrics = metrics
    app.include_router(router)
    app.include_router(completions.router)
    app.include_router(messages.router)
    app.include_router(console.router)
    errors.install(app)
    admission.install(app, settings, metrics)
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
