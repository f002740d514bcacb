"""Keys in Redis, shared by every replica.

Layout under a namespace ``NS`` (default ``intent-router:access``)::

    NS:key:<id>      hash, one field per record field (JSON values)
    NS:keys          set of every key id (the index ``keys list`` walks)
    NS:hash:<sha>    the id of the key whose secret hashes to <sha> (lookup per request)
    NS:name:<name>   the id of the active key of that name (names are unique among them)

Creating, renaming and revoking are one Lua script each, so two CLIs (or an admin call and
a CLI) never leave a name taken twice or a record without its lookup entry. A request's
lookup is one script too (hash → id → record: one round trip). The scripts touch keys
they compute from arguments, so they need all of ``NS`` on one node (not Redis Cluster).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from intent_router.access.keys import (
    KeyRecord,
    KeySpec,
    KeyStore,
    KeyStoreError,
    find,
    new_record,
    updated,
)
from intent_router.errors import AccessUnavailableError

DEFAULT_NAMESPACE = "intent-router:access"

_LOOKUP = """
local id = redis.call('GET', KEYS[1])
if not id then return nil end
return redis.call('HGETALL', ARGV[1] .. id)
"""

# KEYS: name key, record key, index set, hash key; ARGV: id, then field/value pairs.
_CREATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], ARGV[1])
return 1
"""

# KEYS: record key, old name key, new name key (may equal the old); ARGV: id, active
# ('1'/'0'), then field/value pairs.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[2] == '1' and KEYS[2] ~= KEYS[3] then
  if redis.call('SET', KEYS[3], ARGV[1], 'NX') == false then return 0 end
  if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
"""

# KEYS: record key, name key; ARGV: id, revoked time (JSON).
_REVOKE = """
redis.call('HSET', KEYS[1], 'revoked', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


def _fields(record: KeyRecord, names: Any = None) -> list[str]:
    data = record.model_dump()
    out: list[str] = []
    for name in names if names is not None else data:
        out += [name, json.dumps(data[name])]
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _record(raw: Mapping[Any, Any] | list[Any]) -> KeyRecord:
    if isinstance(raw, list):  # HGETALL through a script: a flat list
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    return KeyRecord.model_validate({_text(k): json.loads(v) for k, v in raw.items()})


class RedisKeyStore(KeyStore):
    def __init__(
        self, url: str, *, namespace: str = DEFAULT_NAMESPACE, op_timeout_s: float = 1.0
    ) -> None:
        self.url = url
        self.ns = namespace
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=op_timeout_s, socket_connect_timeout=op_timeout_s
        )
        self._lookup = self._redis.register_script(_LOOKUP)
        self._create = self._redis.register_script(_CREATE)
        self._update = self._redis.register_script(_UPDATE)
        self._revoke = self._redis.register_script(_REVOKE)

    def _k(self, kind: str, part: str) -> str:
        return f"{self.ns}:{kind}:{part}"

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        try:
            raw = await self._lookup(keys=[self._k("hash", key_hash)], args=[f"{self.ns}:key:"])
        except RedisError as exc:
            raise AccessUnavailableError(f"the key store (Redis) cannot be reached: {exc}") from exc
        return _record(raw) if raw else None

    async def records(self) -> list[KeyRecord]:
        ids = sorted(await self._redis.smembers(f"{self.ns}:keys"))
        out = []
        for key_id in ids:
            raw = await self._redis.hgetall(self._k("key", _text(key_id)))
            if raw:
                out.append(_record(raw))
        return sorted(out, key=lambda r: r.created)

    async def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        record, secret = new_record(spec)
        keys = [self._k("name", record.name), self._k("key", record.id), f"{self.ns}:keys",
                self._k("hash", record.hash)]  # fmt: skip
        if not await self._create(keys=keys, args=[record.id, *_fields(record)]):
            raise KeyStoreError(f"an active key named '{spec.name}' exists already")
        return record, secret

    async def update(self, ref: str, changes: Mapping[str, Any]) -> KeyRecord:
        old = find(await self.records(), ref)
        new = updated(old, changes)
        keys = [self._k("key", old.id), self._k("name", old.name), self._k("name", new.name)]
        args = [old.id, "1" if old.active else "0", *_fields(new, changes)]
        done = await self._update(keys=keys, args=args)
        if done == 0:
            raise KeyStoreError(f"an active key named '{new.name}' exists already")
        if done == -1:
            raise KeyStoreError(f"key '{ref}' was deleted meanwhile")
        return new

    async def revoke(self, ref: str) -> KeyRecord:
        old = find(await self.records(), ref)
        if not old.active:
            return old
        new = old.model_copy(update={"revoked": time.time()})
        keys = [self._k("key", old.id), self._k("name", old.name)]
        await self._revoke(keys=keys, args=[old.id, json.dumps(new.revoked)])
        return new

    async def aclose(self) -> None:
        await self._redis.aclose()
