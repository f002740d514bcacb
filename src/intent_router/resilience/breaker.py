"""Circuit breaker per model endpoint, as explicit states (pybreaker-style).

::

    CLOSED ──N consecutive failures──▶ OPEN ──cool-down elapsed, one caller──▶ HALF_OPEN
       ▲                                 ▲                                        │
       └──────────── probe succeeds ─────┼────────────────────────────────────────┤
                                         └──────────── probe fails ───────────────┘

While OPEN every caller is refused. After the cool-down the first caller to ask gets the
single probe (the breaker turns HALF_OPEN); callers arriving while the probe is in flight
are refused as if it were still open. The clock is injected so tests never sleep.

State lives in a :class:`BreakerStorage` (in memory here). The seam is two methods so a
shared store (e.g. Redis) can be added later; such a store would need an atomic
compare-and-set for the probe hand-out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import ClassVar, Protocol

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # consecutive failures while closed
    opened_at: float = 0.0
    probe_in_flight: bool = False


class BreakerStorage(Protocol):
    def load(self, name: str) -> BreakerRecord: ...

    def save(self, name: str, record: BreakerRecord) -> None: ...


class MemoryBreakerStorage:
    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}

    def load(self, name: str) -> BreakerRecord:
        return self._records.get(name, BreakerRecord())

    def save(self, name: str, record: BreakerRecord) -> None:
        self._records[name] = record


Listener = Callable[[str, BreakerState, BreakerState], None]
"""Called with (breaker name, old state, new state) on every transition."""


class _State:
    kind: ClassVar[BreakerState]

    def allow(self, b: CircuitBreaker, r: BreakerRecord) -> bool:
        raise NotImplementedError

    def on_success(self, b: CircuitBreaker, r: BreakerRecord) -> None:
        b._save(BreakerRecord())

    def on_failure(self, b: CircuitBreaker, r: BreakerRecord) -> None:
        b._open()


class _Closed(_State):
    kind = BreakerState.CLOSED

    def allow(self, b: CircuitBreaker, r: BreakerRecord) -> bool:
        return True

    def on_success(self, b: CircuitBreaker, r: BreakerRecord) -> None:
        if r.failures:
            b._save(replace(r, failures=0))

    def on_failure(self, b: CircuitBreaker, r: BreakerRecord) -> None:
        if r.failures + 1 >= b.failure_threshold:
            b._open()
        else:
            b._save(replace(r, failures=r.failures + 1))


class _Open(_State):
    kind = BreakerState.OPEN

    def allow(self, b: CircuitBreaker, r: BreakerRecord) -> bool:
        if b.clock() - r.opened_at < b.cooldown_s:
            return False
        b._save(replace(r, state=BreakerState.HALF_OPEN, probe_in_flight=True))
        return True

    def on_success(self, b: CircuitBreaker, r: BreakerRecord) -> None:
        """A call begun before the breaker opened: no verdict on the open endpoint."""

    def on_failure(self, b: CircuitBreaker, r: BreakerRecord) -> None:
        """Already open: keep the original cool-down."""


class _HalfOpen(_State):
    kind = BreakerState.HALF_OPEN

    def allow(self, b: CircuitBreaker, r: BreakerRecord) -> bool:
        if r.probe_in_flight:
            return False
        b._save(replace(r, probe_in_flight=True))
        return True


_STATES: dict[BreakerState, _State] = {s.kind: s for s in (_Closed(), _Open(), _HalfOpen())}


class CircuitBreaker:
    """One breaker; call :meth:`allow` before each call and report its result."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        storage: BreakerStorage | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._storage = storage if storage is not None else MemoryBreakerStorage()
        # A list is kept by reference so a registry's later listeners reach its breakers.
        self._listeners = listeners if isinstance(listeners, list) else list(listeners)

    @property
    def state(self) -> BreakerState:
        return self._storage.load(self.name).state

    def allow(self) -> bool:
        """May a call go through now? In half-open, True for exactly one caller."""
        r = self._storage.load(self.name)
        return _STATES[r.state].allow(self, r)

    def record_success(self) -> None:
        r = self._storage.load(self.name)
        _STATES[r.state].on_success(self, r)

    def record_failure(self) -> None:
        r = self._storage.load(self.name)
        _STATES[r.state].on_failure(self, r)

    def release(self) -> None:
        """Give back a half-open probe that ended without a verdict (cancelled)."""
        r = self._storage.load(self.name)
        if r.state is BreakerState.HALF_OPEN and r.probe_in_flight:
            self._storage.save(self.name, replace(r, probe_in_flight=False))

    def _open(self) -> None:
        self._save(BreakerRecord(state=BreakerState.OPEN, opened_at=self.clock()))

    def _save(self, record: BreakerRecord) -> None:
        old = self._storage.load(self.name).state
        self._storage.save(self.name, record)
        if old is not record.state:
            log.debug("breaker %s: %s -> %s", self.name, old.value, record.state.value)
            for listener in self._listeners:
                listener(self.name, old, record.state)


class BreakerRegistry:
    """One breaker per model name, sharing settings, clock, storage and listeners."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        storage: BreakerStorage | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._storage = storage if storage is not None else MemoryBreakerStorage()
        self._listeners = list(listeners)
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        if name not in self._breakers:
            self._breakers[name] = CircuitBreaker(
                name,
                failure_threshold=self.failure_threshold,
                cooldown_s=self.cooldown_s,
                clock=self._clock,
                storage=self._storage,
                listeners=self._listeners,
            )
        return self._breakers[name]

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def states(self) -> dict[str, BreakerState]:
        return {name: b.state for name, b in sorted(self._breakers.items())}
