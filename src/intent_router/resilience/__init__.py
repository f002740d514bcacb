"""Retry strategies, circuit breakers and load controls, with injected time."""

from intent_router.resilience.breaker import (
    BreakerPolicy,
    BreakerRecord,
    BreakerRegistry,
    BreakerState,
    BreakerStorage,
    CircuitBreaker,
    Listener,
    MemoryBreakerStorage,
)
from intent_router.resilience.bulkhead import Bulkheads
from intent_router.resilience.cooldown import Cooldowns
from intent_router.resilience.panic import Candidate, PanicValve, least_bad
from intent_router.resilience.retry import Backoff, ExponentialJitter, FixedBackoff, retry_delay
from intent_router.resilience.retry_budget import RetryBudget
from intent_router.resilience.window import Window

__all__ = [
    "Backoff",
    "BreakerPolicy",
    "BreakerRecord",
    "BreakerRegistry",
    "BreakerState",
    "BreakerStorage",
    "Bulkheads",
    "Candidate",
    "CircuitBreaker",
    "Cooldowns",
    "ExponentialJitter",
    "FixedBackoff",
    "Listener",
    "MemoryBreakerStorage",
    "PanicValve",
    "RetryBudget",
    "Window",
    "least_bad",
    "retry_delay",
]
