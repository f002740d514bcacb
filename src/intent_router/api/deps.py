"""Typed access to the long-lived objects the lifespan created."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from intent_router.errors import NotConfiguredError
from intent_router.gateway import Gateway as GatewayService
from intent_router.service import RouterService


async def get_service(request: Request) -> RouterService:
    service: RouterService = request.state.service
    return service


Service = Annotated[RouterService, Depends(get_service)]


async def get_gateway(request: Request) -> GatewayService:
    gateway: GatewayService | None = request.state.gateway
    if gateway is None:
        raise NotConfiguredError(
            "completions are off: the server was started without a models file"
        )
    return gateway


Gateway = Annotated[GatewayService, Depends(get_gateway)]
