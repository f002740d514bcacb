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


async def require_admin(request: Request) -> None:
    expected = os.environ.get(ADMIN_KEY_ENV, "")
    if not expected:
        raise PermissionDeniedError(f"the admin API is off: set {ADMIN_KEY_ENV} to turn it on")
    given = presented_key(request)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthenticationError("admin endpoints need the admin key (" + ADMIN_KEY_ENV + ")")


Admin = Annotated[None, Depends(require_admin)]
"""Add ``_: Admin`` to an endpoint's parameters to make it admin-only."""
