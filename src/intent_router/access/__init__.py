"""Who may call the router and how much: API keys, rate limits, budgets (issue 11)."""

from intent_router.access.principal import ANONYMOUS, Principal

__all__ = ["ANONYMOUS", "Principal"]
