"""API keys: what a key record holds, how a secret is made and hashed, the store interface.

A key's secret is ``ir-`` followed by 43 URL-safe characters (32 random bytes from
:mod:`secrets`). Stores keep only ``sha256(secret)``, never the secret itself: it is shown
once, by ``intent-router keys create``, and cannot be recovered.

Why a plain SHA-256 and not a slow password hash (bcrypt, scrypt, argon2): those exist to
make guessing *low-entropy* secrets chosen by people expensive. Our secrets are 256 random
bits made by the machine, so even a fast hash cannot be inverted by guessing (2^256
tries); and the hash is computed on every request and used as the lookup key, which a
salted slow hash would make impossible (one KDF run per stored key per request). Whoever
reads the key file learns names and limits, not a usable key.

Two stores implement :class:`KeyStore`: :class:`~intent_router.access.file_store.FileKeyStore`
(one JSON file, for one router) and :class:`~intent_router.access.redis_store.RedisKeyStore`
(for replicas).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intent_router.access.principal import Principal
from intent_router.errors import ConfigError

KEY_PREFIX = "ir-"
SECRET_BYTES = 32  # token_urlsafe(32): 43 characters, 256 random bits
Period = Literal["1d", "7d", "30d"]
PRIORITY_NAMES = {"low": 0, "normal": 1, "high": 2}
"""``--priority`` by name; a key's priority is an int, higher served first."""
UPDATABLE = ("name", "team", "budget_usd", "period", "rpm", "tpm", "models", "routes",
             "priority")  # fmt: skip


class KeyStoreError(ConfigError):
    """A key command cannot be done: no such key, a name taken, a bad value."""


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """The stored form of a secret (hex SHA-256); see the module docstring for why."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


class KeySpec(BaseModel):
    """What ``keys create`` and ``keys update`` may set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=r"^[\w.@:-]+$")
    team: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[\w.@:-]+$")
    budget_usd: float | None = Field(default=None, ge=0)
    period: Period = "30d"
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    models: list[str] | None = None  # None: any model
    routes: list[str] | None = None  # None: any route
    priority: int | None = Field(default=None, ge=0, le=2)

    @field_validator("models", "routes")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not [v for v in value if v.strip()]:
            raise ValueError("give at least one name (or leave it out for no limit)")
        return None if value is None else [v.strip() for v in value if v.strip()]


class KeyRecord(KeySpec):
    """One stored key: its spec, id, hash, and life (``created``, ``revoked`` as epoch s)."""

    id: str
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: float
    revoked: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def principal(self) -> Principal:
        return Principal(
            key_id=self.id,
            name=self.name,
            team=self.team,
            budget_usd=self.budget_usd,
            period=self.period,
            rpm=self.rpm,
            tpm=self.tpm,
            models=frozenset(self.models) if self.models is not None else None,
            routes=frozenset(self.routes) if self.routes is not None else None,
            priority=self.priority,
        )

    def public(self) -> dict[str, Any]:
        """The record as ``keys list --json`` shows it (without the hash)."""
        return self.model_dump(exclude={"hash"})


def new_record(spec: KeySpec) -> tuple[KeyRecord, str]:
    """A fresh record for ``spec`` and its secret (to be shown once, then forgotten)."""
    secret = new_secret()
    record = KeyRecord(
        **spec.model_dump(), id=new_key_id(), hash=hash_secret(secret), created=time.time()
    )
    return record, secret


def find(records: Iterable[KeyRecord], ref: str) -> KeyRecord:
    """The key whose id or name is ``ref`` (an active key wins over revoked namesakes)."""
    matches = [r for r in records if r.id == ref or r.name == ref]
    if not matches:
        raise KeyStoreError(f"no key with id or name '{ref}'")
    return sorted(matches, key=lambda r: (not r.active, -r.created))[0]


def updated(record: KeyRecord, changes: Mapping[str, Any]) -> KeyRecord:
    """``record`` with ``changes`` (fields of :data:`UPDATABLE`) applied and validated."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise KeyStoreError(f"cannot update {', '.join(sorted(unknown))} of a key")
    try:
        return KeyRecord.model_validate(record.model_dump() | dict(changes))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise KeyStoreError(first["msg"], field=".".join(str(p) for p in first["loc"])) from None


def check_name_free(records: Iterable[KeyRecord], name: str, *, but: str | None = None) -> None:
    if any(r.name == name and r.active and r.id != but for r in records):
        raise KeyStoreError(f"an active key named '{name}' exists already (revoke or rename it)")


class KeyStore(ABC):
    """Where key records live. The server calls :meth:`lookup` per request."""

    @abstractmethod
    async def lookup(self, key_hash: str) -> KeyRecord | None:
        """The record stored under this hash (revoked or not), or None."""

    @abstractmethod
    async def records(self) -> list[KeyRecord]:
        """Every record, revoked ones included, oldest first."""

    @abstractmethod
    async def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        """Store a new key; returns its record and its secret (never stored)."""

    @abstractmethod
    async def update(self, ref: str, changes: Mapping[str, Any]) -> KeyRecord:
        """Change the fields of the key named or numbered ``ref``."""

    @abstractmethod
    async def revoke(self, ref: str) -> KeyRecord:
        """Mark the key revoked (kept, so its spend and id stay readable)."""

    async def aclose(self) -> None:  # noqa: B027 - stores without resources keep it
        """Release connections."""
