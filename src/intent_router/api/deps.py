"""Typed access to the long-lived objects the lifespan created."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from intent_router.service import RouterService


def get_service(request: Request) -> RouterService:
    service: RouterService = request.state.service
    return service


Service = Annotated[RouterService, Depends(get_service)]
