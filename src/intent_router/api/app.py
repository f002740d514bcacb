"""The FastAPI application: ``create_app`` + a lifespan that owns every long-lived resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI

from intent_router.api import errors
from intent_router.api.routes import router
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.service import RouterService


class State(TypedDict):
    service: RouterService


def create_app(settings: Settings, *, encoder: Encoder | None = None) -> FastAPI:
    """Build the app; the encoder, index and clients are loaded when the lifespan starts.

    ``encoder`` lets a caller that already loaded the model (the CLI, tests) share it.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        service = RouterService.from_settings(settings, encoder)
        await service.start()
        try:
            yield {"service": service}
        finally:
            await service.aclose()

    app = FastAPI(title="intent-router", version="0.1.0", lifespan=lifespan)
    app.include_router(router)
    errors.install(app)
    return app
