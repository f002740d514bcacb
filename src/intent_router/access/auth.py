"""Authentication: a presented secret becomes a :class:`Principal`, or a 401."""

from __future__ import annotations

from intent_router.access.keys import KeyStore, hash_secret
from intent_router.access.principal import Principal
from intent_router.errors import AuthenticationError

HOW = "send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"


class Authenticator:
    """Looks secrets up by hash in a :class:`KeyStore` (the store is never given a secret)."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise AuthenticationError(f"this router needs an API key: {HOW}")
        record = await self.store.lookup(hash_secret(secret))
        if record is None:
            raise AuthenticationError(f"invalid API key: no such key ({HOW})")
        if not record.active:
            raise AuthenticationError(f"the API key '{record.name}' was revoked")
        return record.principal()
