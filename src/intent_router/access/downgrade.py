"""Cheaper models for a key past a share of its budget (``budgets.downgrade_at``, 0.8).

A route may name its ``budget_chain:``; otherwise the chain keeps only the models no
dearer (input + output price per million tokens) than its cheapest. Each model dropped is
returned with the reason, for the decision row. A pinned request (``model`` other than
``auto``) keeps the model its client chose.
"""

from __future__ import annotations

from collections.abc import Sequence

from intent_router.models import ModelsConfig

Skipped = list[tuple[str, str]]


def downgrade(
    chain: Sequence[str],
    budget_chain: Sequence[str],
    models: ModelsConfig,
    *,
    share: float,
    budget: str,
) -> tuple[list[str], Skipped]:
    """The chain for a key whose ``budget`` is ``share`` used, and the models skipped."""
    at = models.budgets.downgrade_at
    if share < at or not chain:
        return list(chain), []
    why = f"{budget} is {share:.0%} used (downgrade at {at:.0%})"
    if budget_chain:
        kept = list(budget_chain)
        return kept, [(m, f"{why}: the route's budget_chain") for m in chain if m not in kept]
    known = [m for m in chain if m in models.models]
    if not known:
        return list(chain), []
    cheapest = min(known, key=lambda m: models.models[m].unit_price)
    floor = models.models[cheapest].unit_price
    kept = [m for m in chain if m not in models.models or models.models[m].unit_price <= floor]
    skipped = [(m, f"{why}: dearer than {cheapest}") for m in chain if m not in kept]
    return kept, skipped
