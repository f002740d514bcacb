"""Admin endpoints (keys, reload, config) need the admin key from the environment.

``INTENT_ROUTER_ADMIN_KEY`` holds it; without it the admin API is off (403 says how to turn
it on). The key is accepted as ``Authorization: Bearer …`` or ``x-api-key``, compared in
constant time.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Depends, Request

from intent_router.errors import AuthenticationError, PermissionDeniedError

ADMIN_KEY_ENV = "INTENT_ROUTER_ADMIN_KEY"


def presented_key(request: Request) -> str | None:
    """The API key a request carries: ``Authorization: Bearer K`` or ``x-api-key: K``."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


def is_admin_key(given: str | None) -> bool:
    """Whether ``given`` is the admin key (constant time); never when none is set."""
    expected = os.environ.get(ADMIN_KEY_ENV, "")
    return (
        bool(expected)
        and given is not None
        and hmac.compare_digest(given.encode(), expected.encode())
    )


async def require_admin(request: Request) -> None:
    if not os.environ.get(ADMIN_KEY_ENV, ""):
        raise PermissionDeniedError(f"the admin API is off: set {ADMIN_KEY_ENV} to turn it on")
    if not is_admin_key(presented_key(request)):
        raise AuthenticationError("admin endpoints need the admin key (" + ADMIN_KEY_ENV + ")")


Admin = Annotated[None, Depends(require_admin)]
"""Add ``_: Admin`` to an endpoint's parameters to make it admin-only."""
