"""The one place where intent-router errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from intent_router.errors import (
    ChainExhaustedError,
    ConfigError,
    IndexError_,
    IntentRouterError,
    QueryError,
)

log = logging.getLogger(__name__)


def status_for(exc: IntentRouterError) -> int:
    if isinstance(exc, QueryError):
        return 422
    if isinstance(exc, ChainExhaustedError):
        return exc.status
    if isinstance(exc, (ConfigError, IndexError_)):
        return 500
    return 503


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntentRouterError)
    status = status_for(exc)
    body: dict[str, object] = {"error": {"type": type(exc).__name__, "message": str(exc)}}
    if isinstance(exc, ChainExhaustedError):
        body["error"] = {**body["error"], "attempts": [_as_dict(a) for a in exc.attempts]}  # type: ignore[dict-item]
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, status, exc)
    return JSONResponse(status_code=status, content=body)


def _as_dict(attempt: object) -> object:
    to_dict = getattr(attempt, "to_dict", None)
    return to_dict() if callable(to_dict) else attempt


def install(app: FastAPI) -> None:
    app.add_exception_handler(IntentRouterError, _handle)
