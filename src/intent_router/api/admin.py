"""Admin endpoints for the configuration: look at it, reload it, roll it back (admin key).

Each calls one thing on the :class:`~intent_router.reload.Reloader`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from intent_router.api.admin_auth import Admin
from intent_router.api.deps import ConfigReloader

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/config")
async def config(_: Admin, reloader: ConfigReloader) -> dict[str, Any]:
    """The version in use (fingerprints of routes, models and index), when it was loaded,
    the last reload error (file, line), the last versions, and other features' sections."""
    return reloader.describe()


@router.post("/reload", response_model=None)
async def reload(_: Admin, reloader: ConfigReloader) -> dict[str, Any] | JSONResponse:
    """Re-read the route and models files; 200 when swapped (or unchanged), 422 when a
    file is refused (the running configuration keeps serving)."""
    result = await reloader.reload()
    if result.status == "refused":
        return JSONResponse(result.to_dict(), status_code=422)
    return result.to_dict()


@router.post("/rollback")
async def rollback(_: Admin, reloader: ConfigReloader) -> dict[str, Any]:
    """Restore the configuration the last reload replaced (404 when none is kept)."""
    return (await reloader.rollback()).to_dict()
