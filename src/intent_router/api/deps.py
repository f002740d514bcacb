"""Typed access to the long-lived objects the lifespan created."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from intent_router.access.context import RequestAccess
from intent_router.configuration import Configuration
from intent_router.errors import NotConfiguredError
from intent_router.gateway import Gateway as GatewayService
from intent_router.reload import Reloader
from intent_router.service import RouterService


async def get_reloader(request: Request) -> Reloader:
    reloader: Reloader = request.state.reloader
    return reloader


ConfigReloader = Annotated[Reloader, Depends(get_reloader)]


async def get_configuration(reloader: ConfigReloader) -> Configuration:
    """The configuration this request runs on, read once when it starts (FastAPI caches a
    dependency per request): a reload meanwhile does not change it under the request."""
    return reloader.current


CurrentConfiguration = Annotated[Configuration, Depends(get_configuration)]


async def get_service(configuration: CurrentConfiguration) -> RouterService:
    return configuration.service


Service = Annotated[RouterService, Depends(get_service)]


async def get_gateway(request: Request) -> GatewayService:
    gateway: GatewayService | None = request.state.gateway
    if gateway is None:
        raise NotConfiguredError(
            "completions are off: the server was started without a models file"
        )
    return gateway


Gateway = Annotated[GatewayService, Depends(get_gateway)]


async def get_request_id(request: Request) -> str | None:
    """The ``x-request-id`` of this request (the client's, else the generated one)."""
    return getattr(request.state, "request_id", None)


RequestId = Annotated[str | None, Depends(get_request_id)]


async def get_access(request: Request) -> RequestAccess:
    """The caller, as the key check found it (``api/access.py``); anonymous without keys."""
    access: RequestAccess | None = getattr(request.state, "access", None)
    return access if access is not None else RequestAccess()


Access = Annotated[RequestAccess, Depends(get_access)]
