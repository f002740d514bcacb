"""``GET /admin/keys`` and ``POST /admin/keys``: the keys commands over HTTP, admin only.

Both need the admin key (``INTENT_ROUTER_ADMIN_KEY``, see ``api/admin_auth.py``) and a
server started with keys (``--keys`` or ``--keys-redis``; otherwise 404). ``POST`` takes
the fields of ``intent-router keys create`` and answers the new key once, in ``key``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from intent_router.access.keys import KeySpec, KeyStore, KeyStoreError
from intent_router.api.admin_auth import Admin
from intent_router.errors import NotConfiguredError, QueryError

router = APIRouter(prefix="/admin")


def _store(request: Request) -> KeyStore:
    control = getattr(request.app.state, "access", None)
    if control is None:
        raise NotConfiguredError("API keys are off: start the server with --keys or --keys-redis")
    store: KeyStore = control.store
    return store


@router.get("/keys")
async def list_keys(request: Request, _: Admin) -> dict[str, Any]:
    """Every key (revoked ones too), without hashes."""
    records = await _store(request).records()
    return {"keys": [r.public() for r in records]}


@router.post("/keys", status_code=201)
async def create_key(body: KeySpec, request: Request, _: Admin) -> dict[str, Any]:
    """Create a key; ``key`` in the answer is its secret, shown this once."""
    try:
        record, secret = await _store(request).create(body)
    except KeyStoreError as exc:  # a name taken: the request's fault, a 400
        raise QueryError(exc.message, param="name") from exc
    return {**record.public(), "key": secret}
