"""Circuit breaker per model: a failure *rate* over a sliding window, as explicit states.

::

    CLOSED ──failure rate ≥ threshold over ≥ minimum calls──▶ OPEN
       ▲                                                       │ cool-down elapsed
       │                                                       ▼
       └──── half_open_probes probes succeed ──── HALF_OPEN ───┘
                                                     │ a probe fails
                                                     └──────────────▶ OPEN (cool-down again)

The resilience4j / Hystrix model: while CLOSED every outcome goes into a time-based
sliding window (``window_s`` long, 10 buckets). The breaker opens when, over at least
``minimum_calls`` outcomes in the window, the failure rate reaches ``failure_rate`` — or,
when ``slow_call_s`` is set, the share of successes slower than it reaches
``slow_call_rate``. Bad luck (a few failures among many calls) does not open it.

While OPEN every caller is refused. After the cool-down the breaker turns HALF_OPEN and
hands out ``half_open_probes`` permits; it closes (with an empty window) once that many
probes succeeded and reopens on the first probe that fails. Each reopening after a failed
probe doubles the cool-down (``cooldown_s * 2**n``, at most ``max_cooldown_s``), so a model
that stays dead costs fewer and fewer probes; closing resets it. A probe that ends without a
verdict (cancelled, or the request's own fault) gives its permit back (:meth:`release`).

The caller decides what one *outcome* is: the dispatcher reports one per request per
model (the final result of that model's attempts), so retries do not multiply a
request's weight, and 429s (back-pressure) are not reported at all.

State lives in a :class:`BreakerStorage` (in memory here). The seam is two methods so a
shared store (e.g. Redis) can be added; such a store would need an atomic compare-and-set
for the probe hand-out. The clock is injected so tests never sleep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import ClassVar, Protocol

from intent_router.resilience.window import Window

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and how it recovers (the models file's ``breaker:`` block)."""

    failure_rate: float = 0.5
    minimum_calls: int = 20
    window_s: float = 30.0
    cooldown_s: float = 30.0
    max_cooldown_s: float = 300.0
    half_open_probes: int = 3
    slow_call_s: float | None = None
    slow_call_rate: float = 1.0


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    state: BreakerState = BreakerState.CLOSED
    window: Window = field(default_factory=Window)  # (calls, failures, slow) while CLOSED
    opened_at: float = 0.0
    probes_out: int = 0  # HALF_OPEN: permits handed out and not given back
    probes_ok: int = 0  # HALF_OPEN: probes that succeeded
    reopens: int = 0  # OPEN/HALF_OPEN: failed probe rounds since the breaker last closed

    def cooldown(self, policy: BreakerPolicy) -> float:
        """This opening's cool-down: doubled per failed probe round, capped."""
        cap = max(policy.max_cooldown_s, policy.cooldown_s)
        return float(min(policy.cooldown_s * 2.0**self.reopens, cap))


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

    def on_result(self, b: CircuitBreaker, r: BreakerRecord, failed: bool, slow: bool) -> None:
        raise NotImplementedError


class _Closed(_State):
    kind = BreakerState.CLOSED

    def allow(self, b: CircuitBreaker, r: BreakerRecord) -> bool:
        return True

    def on_result(self, b: CircuitBreaker, r: BreakerRecord, failed: bool, slow: bool) -> None:
        p = b.policy
        window = r.window.add(b.clock(), (1, int(failed), int(slow)), span_s=p.window_s)
        calls, failures, slow_calls = window.totals(b.clock(), span_s=p.window_s, width=3)
        too_many_failures = failures >= p.failure_rate * calls
        too_slow = p.slow_call_s is not None and slow_calls >= p.slow_call_rate * calls
        if calls >= p.minimum_calls and (too_many_failures or too_slow):
            why = "failure" if too_many_failures else "slow-call"
            count = failures if too_many_failures else slow_calls
            log.warning(
                "breaker %s opened: %s rate %d/%d in %gs", b.name, why, count, calls, p.window_s
            )
            b._open()
        else:
            b._save(replace(r, window=window))


class _Open(_State):
    kind = BreakerState.OPEN

    def allow(self, b: CircuitBreaker, r: BreakerRecord) -> bool:
        if b.clock() - r.opened_at < r.cooldown(b.policy):
            return False
        b._save(
            BreakerRecord(
                state=BreakerState.HALF_OPEN, opened_at=r.opened_at, probes_out=1,
                reopens=r.reopens,
            )
        )  # fmt: skip
        return True

    def on_result(self, b: CircuitBreaker, r: BreakerRecord, failed: bool, slow: bool) -> None:
        """A call begun before the breaker opened: no verdict on the open endpoint."""


class _HalfOpen(_State):
    kind = BreakerState.HALF_OPEN

    def allow(self, b: CircuitBreaker, r: BreakerRecord) -> bool:
        if r.probes_out >= b.policy.half_open_probes:
            return False
        b._save(replace(r, probes_out=r.probes_out + 1))
        return True

    def on_result(self, b: CircuitBreaker, r: BreakerRecord, failed: bool, slow: bool) -> None:
        if failed:
            b._open(reopens=r.reopens + 1)
        elif r.probes_ok + 1 >= b.policy.half_open_probes:
            b._save(BreakerRecord())
        else:
            b._save(replace(r, probes_ok=r.probes_ok + 1))


_STATES: dict[BreakerState, _State] = {s.kind: s for s in (_Closed(), _Open(), _HalfOpen())}


class CircuitBreaker:
    """One breaker; call :meth:`allow` before a call and report its outcome once."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock = time.monotonic,
        storage: BreakerStorage | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.name = name
        self.policy = policy if policy is not None else BreakerPolicy()
        self.clock = clock
        self._storage = storage if storage is not None else MemoryBreakerStorage()
        # A list is kept by reference so a registry's later listeners reach its breakers.
        self._listeners = listeners if isinstance(listeners, list) else list(listeners)

    @property
    def state(self) -> BreakerState:
        return self._storage.load(self.name).state

    def allow(self) -> bool:
        """May a call go through now? In half-open, True for ``half_open_probes`` callers."""
        r = self._storage.load(self.name)
        return _STATES[r.state].allow(self, r)

    def record_success(self, duration_s: float = 0.0) -> None:
        slow = self.policy.slow_call_s is not None and duration_s >= self.policy.slow_call_s
        r = self._storage.load(self.name)
        _STATES[r.state].on_result(self, r, False, slow)

    def record_failure(self) -> None:
        r = self._storage.load(self.name)
        _STATES[r.state].on_result(self, r, True, False)

    def release(self) -> None:
        """Give back a half-open permit that ended without a verdict."""
        r = self._storage.load(self.name)
        if r.state is BreakerState.HALF_OPEN and r.probes_out > 0:
            self._storage.save(self.name, replace(r, probes_out=r.probes_out - 1))

    def force_probe(self) -> None:
        """Take a probe permit even while open (the panic trickle); no-op when closed."""
        r = self._storage.load(self.name)
        if r.state is BreakerState.OPEN:
            self._save(
                BreakerRecord(
                    state=BreakerState.HALF_OPEN, opened_at=r.opened_at, reopens=r.reopens
                )
            )
            r = self._storage.load(self.name)
        if r.state is BreakerState.HALF_OPEN:
            self._storage.save(self.name, replace(r, probes_out=r.probes_out + 1))

    def failure_rate(self) -> float:
        """Failures / calls in the window (1.0 while open or half-open, 0.0 without calls)."""
        r = self._storage.load(self.name)
        if r.state is not BreakerState.CLOSED:
            return 1.0
        calls, failures, _ = r.window.totals(self.clock(), span_s=self.policy.window_s, width=3)
        return failures / calls if calls else 0.0

    def available_at(self) -> float:
        """When a call may next be let through (now unless open and cooling)."""
        r = self._storage.load(self.name)
        if r.state is BreakerState.OPEN:
            return r.opened_at + r.cooldown(self.policy)
        return self.clock()

    def _open(self, reopens: int = 0) -> None:
        record = BreakerRecord(state=BreakerState.OPEN, opened_at=self.clock(), reopens=reopens)
        self._save(record)

    def _save(self, record: BreakerRecord) -> None:
        old = self._storage.load(self.name).state
        self._storage.save(self.name, record)
        if old is not record.state:
            log.info("breaker %s: %s -> %s", self.name, old.value, record.state.value)
            for listener in self._listeners:
                listener(self.name, old, record.state)


class BreakerRegistry:
    """One breaker per model name, sharing policy, clock, storage and listeners."""

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock = time.monotonic,
        storage: BreakerStorage | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.policy = policy if policy is not None else BreakerPolicy()
        self._clock = clock
        self._storage = storage if storage is not None else MemoryBreakerStorage()
        self._listeners = list(listeners)
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        if name not in self._breakers:
            self._breakers[name] = CircuitBreaker(
                name,
                self.policy,
                clock=self._clock,
                storage=self._storage,
                listeners=self._listeners,
            )
        return self._breakers[name]

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def adopt(self, other: BreakerRegistry, names: Iterable[str]) -> None:
        """Take ``other``'s state for ``names`` (a reload keeps unchanged models' breakers)."""
        for name in names:
            self._storage.save(name, other._storage.load(name))

    def states(self) -> dict[str, BreakerState]:
        return {name: b.state for name, b in sorted(self._breakers.items())}
