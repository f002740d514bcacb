"""The Redis backend: one cache shared by several router replicas.

Entries live in Redis (``{ns}:e:{key}``, JSON, expiring with the entry). Every store is
also appended to a stream (``{ns}:stream``, XADD with approximate MAXLEN) carrying the
question, its scope and its vector. Each replica keeps a local mirror (a
:class:`~intent_router.cache.memory.LocalStore` without payloads) fed by a background task
that reads the stream (XREAD BLOCK), so a question cached by replica A is found by replica
B's vector search within a second. On a mirror hit the entry is fetched from Redis; if it
expired there, it is a miss and leaves the mirror.

When Redis cannot be reached the backend is *down*: lookups miss and stores are dropped
without touching the network, so a dead Redis never stalls a request. The background task
probes Redis; when it answers, the mirror is rebuilt from the stream and the backend is
*up* again. Each change of state is logged once, with hysteresis: "unreachable" at the
first failure, "reachable again" only once Redis has stayed up for ``settle_s`` (a
recovering Redis often fails a stale connection or two right after it answers; those
blips change the state but are not logged as recoveries and new outages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, cast

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from intent_router.cache.backend import CacheBackend
from intent_router.cache.entry import CacheEntry, Candidate
from intent_router.cache.memory import Clock, LocalStore
from intent_router.cache.semantic import Vector

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Messages = list[tuple[bytes, dict[bytes, bytes]]]
_DOWN_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisBackend(CacheBackend):
    """Entries in Redis, a local vector mirror per replica, kept in sync by a stream."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "intent-router:cache",
        dim: int = 384,
        max_entries: int = 100_000,
        op_timeout_s: float = 0.3,
        block_ms: int = 250,
        probe_every_s: float = 0.5,
        settle_s: float = 2.0,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.url = url
        self.ns = namespace
        self.stream = f"{namespace}:stream"
        self.max_entries = max_entries
        self.block_ms = block_ms
        self.probe_every_s = probe_every_s
        self.settle_s = settle_s
        self.clock = clock
        self.sleep = sleep
        # Request path: short timeouts. Stream reader: its own connection, allowed to block.
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=op_timeout_s, socket_connect_timeout=op_timeout_s
        )
        self._reader = aioredis.Redis.from_url(
            url,
            socket_timeout=op_timeout_s + block_ms / 1000,
            socket_connect_timeout=op_timeout_s,
        )
        self.mirror = LocalStore(dim=dim, max_entries=max_entries, clock=clock)
        self._up = False
        self._last_id = b"0-0"
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._logged: str | None = None  # the state last logged: None, "up" or "down"
        self._up_since = 0.0
        self.errors = 0
        self.resyncs = 0

    @property
    def available(self) -> bool:
        return self._up

    def _entry_key(self, key: str) -> str:
        return f"{self.ns}:e:{key}"

    # -- state ---------------------------------------------------------------------------

    def _mark_down(self, exc: BaseException) -> None:
        self.errors += 1
        self._up = False
        if self._logged != "down":
            self._logged = "down"
            log.warning("cache redis %s unreachable, caching paused: %s", self.url, exc)

    def _mark_up(self) -> None:
        if not self._up:
            self._up = True
            self._up_since = self.clock()
        if self._logged is None:
            self._logged = "up"
            log.info("cache redis %s connected, mirror synced", self.url)
        self._log_recovery()

    def _log_recovery(self) -> None:
        """Log "reachable again" once Redis has been up for ``settle_s`` since an outage."""
        if self._up and self._logged == "down" and self.clock() - self._up_since >= self.settle_s:
            self._logged = "up"
            log.warning("cache redis %s reachable again, mirror re-synced", self.url)

    async def start(self) -> None:
        """Connect and sync once (if Redis is there), then keep the mirror in sync."""
        await self._recover()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cache-redis-sync")

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()
        await self._reader.aclose()

    # -- background sync -----------------------------------------------------------------

    async def _run(self) -> None:
        # redis-py may turn a cancelled read into a connection error; the flag still stops us.
        while not self._closing:
            self._log_recovery()
            if not self._up:
                await self.sleep(self.probe_every_s)
                await self._recover()
                continue
            try:
                reply = await self._reader.xread(
                    {self.stream: self._last_id}, count=512, block=self.block_ms
                )
            except _DOWN_ERRORS as exc:
                self._mark_down(exc)
                continue
            # RESP2 answers [[stream, messages]], RESP3 {stream: messages}.
            streams: Any = reply.items() if isinstance(reply, dict) else (reply or [])
            for _, messages in streams:
                self._apply(cast(Messages, messages))

    async def _recover(self) -> None:
        """Probe Redis; when it answers, rebuild the mirror from the stream."""
        try:
            await self._redis.ping()
            await self._reader.ping()  # drop the reader's stale connection too
            self.mirror.clear()
            self._last_id = b"0-0"
            while True:
                start = b"(" + self._last_id if self._last_id != b"0-0" else b"-"
                batch = await self._redis.xrange(self.stream, min=start, count=1024)
                if not batch:
                    break
                self._apply(cast(Messages, batch))
        except _DOWN_ERRORS as exc:
            self._mark_down(exc)
            return
        self.resyncs += 1
        self._mark_up()

    def _apply(self, messages: Messages) -> None:
        now = self.clock()
        for message_id, fields in messages:
            self._last_id = message_id
            keep_until = float(fields[b"keep"])
            if keep_until <= now:
                continue
            entry = CacheEntry(
                key=fields[b"key"].decode(),
                scope=fields[b"scope"].decode(),
                text=fields[b"text"].decode(),
                created_at=float(fields[b"at"]),
                fresh_until=float(fields[b"fresh"]),
                keep_until=keep_until,
            )
            self.mirror.put(entry, np.frombuffer(fields[b"vec"], dtype=np.float32))

    # -- the backend interface -----------------------------------------------------------

    async def get(self, key: str) -> CacheEntry | None:
        if not self._up:
            return None
        try:
            raw = await self._redis.get(self._entry_key(key))
        except _DOWN_ERRORS as exc:
            self._mark_down(exc)
            return None
        if raw is None:
            self.mirror.delete(key)  # expired (or evicted) in Redis: gone here too
            return None
        entry = CacheEntry.from_json(raw)
        if entry.keep_until <= self.clock():
            self.mirror.delete(key)
            return None
        return entry

    async def nearest(
        self, scope: str, vector: Vector, k: int, min_similarity: float
    ) -> list[Candidate]:
        if not self._up:
            return []
        return self.mirror.nearest(scope, vector, k, min_similarity)

    async def put(self, entry: CacheEntry, vector: Vector) -> None:
        if not self._up:
            return
        ttl_ms = max(1, int((entry.keep_until - self.clock()) * 1000))
        fields: dict[str, str | bytes | float] = {
            "key": entry.key,
            "scope": entry.scope,
            "text": entry.text,
            "at": entry.created_at,
            "fresh": entry.fresh_until,
            "keep": entry.keep_until,
            "vec": np.asarray(vector, dtype=np.float32).tobytes(),
        }
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._entry_key(entry.key), entry.to_json(), px=ttl_ms)
                pipe.xadd(self.stream, fields, maxlen=self.max_entries, approximate=True)  # type: ignore[arg-type]
                await pipe.execute()
        except _DOWN_ERRORS as exc:
            self._mark_down(exc)
            return
        self.mirror.put(replace(entry, payload={}), vector)  # our own store: visible at once

    async def delete(self, key: str) -> None:
        self.mirror.delete(key)
        if not self._up:
            return
        try:
            await self._redis.delete(self._entry_key(key))
        except _DOWN_ERRORS as exc:
            self._mark_down(exc)

    def stats(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "state": "up" if self._up else "down",
            "entries": len(self.mirror),
            "evictions": self.mirror.evictions,
            "expirations": self.mirror.expirations,
            "errors": self.errors,
            "resyncs": self.resyncs,
        }
