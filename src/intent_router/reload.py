"""Hot reload: re-read the route and models files, build off the request path, swap at once.

:class:`Reloader` holds the configuration in use (:attr:`Reloader.current`) and the ones it
replaced. :meth:`Reloader.reload` (``SIGHUP``, ``POST /admin/reload``):

1. reads and checks the files in a worker thread, as start-up does
   (:func:`~intent_router.configuration.load_configuration`), building what changed into a
   new index build (the embedding cache makes it incremental; the encoder is shared with
   live traffic, one batch at a time);
2. refuses a bad file: the error (file, line, field) is logged and kept as
   :attr:`Reloader.last_error`, and the running configuration keeps serving;
3. otherwise builds the new :class:`~intent_router.configuration.Configuration`
   (resilience state of unchanged models carried over), starts it, and swaps the
   references requests read: :attr:`Reloader.current` (``/route``, the console) and the
   gateway's ``runtime`` (the chat endpoints), in one step with no ``await`` between.

A request reads its configuration once, when it starts, and finishes on it: requests in
flight end on the old configuration, new ones use the new, and none fails. Reloads (and
rollbacks) are serialised by a lock. The last ``keep`` versions are listed; the
configurations replaced are kept in memory (at most ``keep - 1``) so that
:meth:`Reloader.rollback` restores the previous one without rebuilding. A retired
configuration is closed after ``grace_s`` (requests that captured it have routed by then).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from intent_router.configuration import Configuration, Loaded, Shared, load_configuration
from intent_router.errors import ConfigError, IntentRouterError, NotConfiguredError
from intent_router.gateway import Gateway

log = logging.getLogger(__name__)

Status = Literal["reloaded", "unchanged", "refused", "rolled_back"]
Prepare = Callable[[], Loaded]
Section = Callable[[], Any]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ReloadError:
    """Why a reload was refused, and where."""

    message: str
    kind: str
    at: float
    path: str | None = None
    line: int | None = None
    field: str | None = None

    @classmethod
    def of(cls, exc: BaseException, at: float) -> ReloadError:
        where = exc if isinstance(exc, ConfigError) else None
        return cls(
            message=str(exc),
            kind=type(exc).__name__,
            at=at,
            path=where.path if where else None,
            line=where.line if where else None,
            field=where.field if where else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "type": self.kind,
            "file": self.path,
            "line": self.line,
            "field": self.field,
            "at": round(self.at, 3),
        }


@dataclass(frozen=True)
class ReloadResult:
    status: Status
    version: dict[str, Any]
    previous: dict[str, Any] | None = None
    error: ReloadError | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "previous": self.previous,
            "error": self.error.to_dict() if self.error else None,
            "seconds": round(self.seconds, 3),
        }


class Reloader:
    """The configuration in use, the versions before it, and the way to change it safely."""

    def __init__(
        self,
        shared: Shared,
        first: Configuration,
        *,
        gateway: Gateway | None = None,
        keep: int = 5,
        grace_s: float = 30.0,
        prepare: Prepare | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if keep < 2:
            raise ValueError("keep at least 2 versions (the current one and one to roll back to)")
        self.shared = shared
        self.current = first
        self.gateway = gateway
        self.keep = keep
        self.grace_s = grace_s
        self.last_error: ReloadError | None = None
        self.last_result: ReloadResult | None = None
        self.sections: dict[str, Section] = {}
        """Other parts of ``GET /admin/config`` (name → callable returning its JSON body)."""
        self._prepare = prepare or (
            lambda: load_configuration(shared.settings, shared.encoder, build=True, clock=clock)
        )
        self._clock = clock
        self._sleep = sleep
        self._previous: deque[Configuration] = deque()  # most recent last
        self._versions: deque[dict[str, Any]] = deque(maxlen=keep)
        self._versions.append({**first.version.to_dict(), "event": "start"})
        self._lock = asyncio.Lock()
        self._retiring: dict[asyncio.Task[None], Configuration] = {}

    async def reload(self) -> ReloadResult:
        """Re-read the files; swap to the new configuration unless a file is refused."""
        async with self._lock:
            started = time.perf_counter()
            old = self.current
            try:
                loaded = await asyncio.to_thread(self._prepare)
                if loaded.version.fingerprint == old.version.fingerprint:
                    return self._done(ReloadResult("unchanged", old.version.to_dict()))
                new = Configuration(loaded, self.shared)
            except IntentRouterError as exc:
                return self._refused(exc, old, started)
            new.inherit(old)
            await new.start()
            self._swap(new, event="reload")
            seconds = time.perf_counter() - started
            before, after = old.version.fingerprint, loaded.version.fingerprint
            log.info("configuration reloaded: %s -> %s in %.2fs", before, after, seconds)
            versions = loaded.version.to_dict(), old.version.to_dict()
            return self._done(ReloadResult("reloaded", *versions, seconds=seconds))

    async def rollback(self) -> ReloadResult:
        """Restore the configuration the last reload replaced (kept in memory)."""
        async with self._lock:
            if not self._previous:
                raise NotConfiguredError("nothing to roll back to: no earlier version is kept")
            old, back = self.current, self._previous.pop()
            back.inherit(old)
            self._publish(back)
            self._retire(old)
            self._versions.append({**back.version.to_dict(), "event": "rollback"})
            before, after = old.version.fingerprint, back.version.fingerprint
            log.warning("configuration rolled back: %s -> %s", before, after)
            return self._done(
                ReloadResult("rolled_back", back.version.to_dict(), old.version.to_dict())
            )

    def describe(self) -> dict[str, Any]:
        """The body of ``GET /admin/config``."""
        settings = self.shared.settings
        body: dict[str, Any] = {
            "version": self.current.version.to_dict(),
            "routes_dir": str(settings.routes_dir),
            "models_file": str(settings.models_file) if settings.models_file else None,
            "index_build": str(self.current.loaded.index.folder),
            "routes": self.current.service.routes.names,
            "last_error": self.last_error.to_dict() if self.last_error else None,
            "last_reload": self.last_result.to_dict() if self.last_result else None,
            "versions": list(self._versions),
            "rollback_to": self._previous[-1].version.fingerprint if self._previous else None,
        }
        for name, section in self.sections.items():
            body[name] = section()
        return body

    async def aclose(self) -> None:
        """Close every configuration (the server is stopping)."""
        retiring = list(self._retiring.items())
        for task, _ in retiring:
            task.cancel()
        kept = {id(c): c for c in (self.current, *self._previous, *(c for _, c in retiring))}
        for configuration in kept.values():
            await configuration.aclose()

    def _swap(self, new: Configuration, *, event: str) -> None:
        old = self.current
        self._publish(new)
        self._previous.append(old)
        while len(self._previous) > self.keep - 1:
            self._retire(self._previous.popleft())
        self._versions.append({**new.version.to_dict(), "event": event})

    def _publish(self, new: Configuration) -> None:
        """The swap: both references requests read, with no await in between."""
        old, self.current = self.current, new
        if self.gateway is not None and new.runtime is not None:
            self.gateway.runtime = new.runtime
        new.activate(old)

    def _refused(self, exc: IntentRouterError, old: Configuration, started: float) -> ReloadResult:
        error = ReloadError.of(exc, self._clock())
        self.last_error = error
        log.error("reload refused, the running configuration keeps serving: %s", exc)
        seconds = time.perf_counter() - started
        return self._done(
            ReloadResult("refused", old.version.to_dict(), error=error, seconds=seconds)
        )

    def _done(self, result: ReloadResult) -> ReloadResult:
        self.last_result = result
        return result

    def _retire(self, configuration: Configuration) -> None:
        async def close_later() -> None:
            await self._sleep(self.grace_s)
            await configuration.aclose()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring[task] = configuration
        task.add_done_callback(lambda done: self._retiring.pop(done, None))


def install_reload_signal(reloader: Reloader) -> Callable[[], None]:
    """Make ``SIGHUP`` reload (on the running loop, main thread); return the undo."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[ReloadResult]] = set()

    def on_hangup() -> None:
        log.info("SIGHUP: reloading the route and models files")
        task = loop.create_task(reloader.reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    except (NotImplementedError, RuntimeError, ValueError) as exc:  # not the main thread …
        log.warning("SIGHUP does not reload here (%s): use POST /admin/reload", exc)
        return lambda: None

    def undo() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return undo
