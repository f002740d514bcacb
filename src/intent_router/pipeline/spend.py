"""The budget stages around dispatch: reserve before it, settle after it.

:func:`reserve` runs after routing and the cache (a cached answer costs nothing): the
PII gate and the downgrade narrow ``ex.plan.chain`` (what they drop goes to
``ex.skipped`` with the reason), then the worst case of what is left is reserved against
the caller's budgets (:class:`~intent_router.access.spending.Spending`). :func:`settle`
runs once the answer is known, the request failed, or a stream ended or was cut; it is
idempotent, so the gateway may call it from every way out.
"""

from __future__ import annotations

import dataclasses

from intent_router.pipeline.exchange import Exchange


async def reserve(ex: Exchange) -> None:
    rt, plan = ex.runtime, ex.plan
    budget_chain = rt.router.routes.get(plan.route).budget_chain if plan.route else []
    hold = await rt.spending.hold(
        ex.principal, ex.request, plan.chain,
        budget_chain=budget_chain, pinned=plan.pinned is not None,
    )  # fmt: skip
    ex.hold = hold
    ex.skipped += hold.skipped
    ex.notes.update(hold.record)
    if hold.chain != plan.chain:
        ex.plan = dataclasses.replace(plan, chain=hold.chain)


async def settle(ex: Exchange, *, model: str | None = None, output_chars: int = 0) -> None:
    """Count the fresh answer's cost (an answer from the cache, a stale one included, cost
    nothing), else what a stream of ``model`` sent before it was cut, else nothing."""
    if ex.hold is None:
        return
    fresh = ex.response if ex.cache.hit is None else None
    await ex.runtime.spending.settle(
        ex.hold, ex.request, fresh, model=model, output_chars=output_chars
    )
