"""Retry strategies and circuit breakers, with injected time."""

from intent_router.resilience.breaker import (
    BreakerRecord,
    BreakerRegistry,
    BreakerState,
    BreakerStorage,
    CircuitBreaker,
    Listener,
    MemoryBreakerStorage,
)
from intent_router.resilience.retry import Backoff, ExponentialJitter, FixedBackoff, retry_delay

__all__ = [
    "Backoff",
    "BreakerRecord",
    "BreakerRegistry",
    "BreakerState",
    "BreakerStorage",
    "CircuitBreaker",
    "ExponentialJitter",
    "FixedBackoff",
    "Listener",
    "MemoryBreakerStorage",
    "retry_delay",
]
