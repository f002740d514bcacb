"""The caller of one request, as the authentication layer found it.

A :class:`Principal` is what the rest of the request path knows about a caller: which key
(by id, never the secret), its team, and the limits that key carries. Without ``--keys``
every request is :data:`ANONYMOUS` (no limits, nothing enforced).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    key_id: str  # stable id of the key (not the secret, not its hash); "anonymous" when open
    name: str
    team: str | None = None
    budget_usd: float | None = None  # per period; None: no budget
    period: str | None = None  # "1d" | "7d" | "30d"
    rpm: int | None = None
    tpm: int | None = None
    models: frozenset[str] | None = None  # None: any model
    routes: frozenset[str] | None = None  # None: any route
    priority: int | None = None  # feeds the admission queue (higher first)

    @property
    def anonymous(self) -> bool:
        return self.key_id == ANONYMOUS.key_id

    @property
    def tenant(self) -> str:
        """The cache tenant: the team when the key has one, else the key itself."""
        return f"team:{self.team}" if self.team else f"key:{self.key_id}"


ANONYMOUS = Principal(key_id="anonymous", name="anonymous")
