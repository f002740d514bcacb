"""``GET /admin/rollouts``: every route's variants, weights, canary figures and rollbacks.

Admin-only (:data:`~intent_router.api.admin_auth.Admin`). The same dictionary is what
``/admin/config`` shows under ``rollouts``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from intent_router.api.admin_auth import Admin
from intent_router.api.deps import Gateway
from intent_router.gateway import Gateway as GatewayService

router = APIRouter()


def describe(gateway: GatewayService) -> dict[str, Any]:
    """The rollouts of the runtime serving now (``/admin/config`` shows it too)."""
    return gateway.rollouts.to_dict()


@router.get("/admin/rollouts")
async def rollouts(_: Admin, gateway: Gateway) -> dict[str, Any]:
    """Variants (configured and current weight, window figures), rollbacks, shadow policies."""
    return describe(gateway)
