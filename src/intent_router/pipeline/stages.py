"""The stages of a chat request, in order; each reads and fills one :class:`Exchange`.

``PREPARE`` runs before any model is called; a stage that answers (a cache hit) sets
``ex.response`` and the rest of ``PREPARE`` is skipped. Then :func:`dispatch` (or
:func:`open_stream`), :func:`stale` when every model failed, and :func:`store`. The record
stage is :class:`intent_router.pipeline.recorder.Recorder` (it also needs the gateway's
metrics and logs, which outlive a runtime).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from intent_router.cache import CacheHit, CacheScope
from intent_router.errors import ChainExhaustedError, UnknownModelError
from intent_router.pipeline.exchange import (
    AUTO,
    NO_VECTOR,
    Exchange,
    Plan,
    conversation_turns,
    routing_text,
)
from intent_router.providers import DispatchEvent
from intent_router.request_cache import response_from
from intent_router.rollout.assign import subject_for

Stage = Callable[[Exchange], Awaitable[None]]


async def parse(ex: Exchange) -> None:
    """The text that routes and keys the cache (QueryError when there is none)."""
    ex.text = routing_text(ex.request)


async def admit(ex: Exchange) -> None:
    """Access before any work: a pinned model the key may not use (403), then the key's
    and its team's rate limits (429); see :mod:`intent_router.access.context`."""
    if ex.pinned is not None:
        ex.access.check_model(ex.pinned)
    await ex.access.admit(ex.request.estimated_input_tokens(), ex.request.max_tokens)


async def exact_cache(ex: Exchange) -> None:
    """An exact repeat, answered before routing, in the early scope (no embedding)."""
    cache = ex.runtime.cache
    ex.early = _early_scope(ex)
    hit = await cache.lookup_exact(ex.early, ex.text, ex.directives)
    if hit is None:
        return
    ex.plan = Plan(
        decision=None,
        chain=list(hit.payload.get("chain", [])),
        pinned=ex.pinned,
        text=ex.text,
        vector=NO_VECTOR,
        route=hit.payload.get("route"),
    )
    serve(ex, hit)


async def embed_and_route(ex: Exchange) -> None:
    """The plan: the route and its chain, or the pinned model and its fallbacks."""
    rt = ex.runtime
    pinned = ex.pinned
    if pinned is not None:
        check_model(rt.models.models, pinned)
        chain = [pinned, *rt.models.models[pinned].fallbacks]
        vector = await rt.router.embed(ex.text) if rt.cache.uses_vectors else NO_VECTOR
        ex.plan = Plan(decision=None, chain=chain, pinned=pinned, text=ex.text, vector=vector)
        return
    routed = await rt.router.route_conversation(conversation_turns(ex.request))
    decision = routed.decision
    chain = list(decision.chain) if decision.route else list(rt.models.default_chain)
    ex.plan = Plan(
        decision=decision,
        chain=chain,
        pinned=None,
        text=ex.text,
        vector=routed.vector,
        route=decision.route,
        conversation=routed.conversation,
    )


async def choose_variant(ex: Exchange) -> None:
    """A route with variants: the one this caller gets (sticky by key, else ``user``, else
    per request) replaces the chain; a canary's chain ends with the baseline's models."""
    principal = ex.principal
    subject = subject_for(
        None if principal.anonymous else principal.key_id, ex.request.user, ex.call.request_id
    )
    choice = ex.runtime.rollouts.choose(ex.plan.route, subject)
    if choice is not None:
        ex.plan = dataclasses.replace(ex.plan, chain=choice.chain, variant=choice)


async def permit(ex: Exchange) -> None:
    """Only the models the key may use: a routed chain (or a pinned model's fallbacks) is
    cut to them, the others skipped; 403 when none is left or the route is not the key's."""
    plan = ex.plan
    if ex.principal.models is None and ex.principal.routes is None:
        return
    if plan.pinned is not None:
        kept = ex.access.allowed(plan.chain)
    else:
        kept = ex.access.chain(plan.route, plan.chain)
    ex.skipped += [(m, "not allowed for this API key") for m in plan.chain if m not in kept]
    ex.plan = dataclasses.replace(plan, chain=kept)


async def semantic_cache(ex: Exchange) -> None:
    """A similar question answered before, inside the routed scope."""
    plan, cache = ex.plan, ex.runtime.cache
    # A question and its translation never share an answer (it is in the other language).
    lang = plan.decision.lang if plan.decision is not None else None
    early = ex.early if ex.early is not None else _early_scope(ex)
    ex.scope = cache.context(
        ex.request, route=plan.route, chain=plan.chain, pinned=plan.pinned,
        directives=ex.directives, early=early, lang=lang, tenant=ex.access.cache_tenant,
    )  # fmt: skip
    hit = await cache.lookup(ex.scope, plan.text, plan.vector)
    if hit is not None:
        serve(ex, hit)


PREPARE: tuple[Stage, ...] = (
    parse, admit, exact_cache, embed_and_route, choose_variant, permit, semantic_cache
)


async def prepare(ex: Exchange, stages: tuple[Stage, ...] = PREPARE) -> None:
    """Run the stages before dispatch, stopping at the first that answers."""
    for stage in stages:
        await stage(ex)
        if ex.answered:
            return


async def dispatch(ex: Exchange) -> None:
    """Walk the chain; when every model fails, a stale answer if the route allows one."""
    plan = ex.plan
    try:
        ex.response = await ex.runtime.dispatcher.complete(ex.request, plan.chain, route=plan.route)
    except ChainExhaustedError as exc:
        await stale(ex, exc)


@dataclass(frozen=True)
class Opened:
    """A stream the dispatcher opened: the answering model and the events, first included."""

    model: str
    first: DispatchEvent
    events: AsyncIterator[DispatchEvent]


async def open_stream(ex: Exchange) -> Opened | None:
    """Open the stream (errors surface before anything is sent); None when a stale answer
    stands in for an exhausted chain (``ex.response`` is then set)."""
    plan = ex.plan
    opened: list[str] = []
    events = aiter(
        ex.runtime.dispatcher.stream(ex.request, plan.chain, route=plan.route,
                                     on_open=opened.append)
    )  # fmt: skip
    try:
        first = await anext(events)
    except ChainExhaustedError as exc:
        await stale(ex, exc)
        return None
    return Opened(opened[0], first, events)


async def stale(ex: Exchange, exc: ChainExhaustedError) -> None:
    """Every model failed: serve a stale answer if the route opts in, else raise."""
    ex.error = exc
    if ex.scope is None:
        raise exc
    hit = await ex.runtime.cache.stale(ex.scope, ex.plan.text, ex.plan.vector)
    if hit is None:
        raise exc
    serve(ex, hit, kind="stale")


async def store(ex: Exchange) -> None:
    """Keep a fresh answer for the next similar question (the store rules decide); an
    answer served from the cache (a stale one included) is not stored again."""
    if ex.response is None or ex.scope is None or ex.cache.hit is not None:
        return
    plan = ex.plan
    ex.cache = await ex.runtime.cache.store(
        ex.scope, plan.text, plan.vector, ex.response, route=plan.route, chain=plan.chain
    )


async def settle_limits(ex: Exchange) -> None:
    """Correct the key's token charge to what the answer really used (0 for an answer
    from the cache or a failure: no upstream tokens were bought)."""
    response = ex.response
    used = 0
    if response is not None and ex.cache.hit is None:
        used = (response.input_tokens or 0) + (response.output_tokens or 0)
    await ex.access.settle(used)


def _early_scope(ex: Exchange) -> CacheScope:
    """The exact tier's scope; with keys, the caller's tenant and model list are in it."""
    access = ex.access
    return ex.runtime.cache.early_scope(
        ex.request, ex.pinned, tenant=access.cache_tenant, limits=access.cache_limits
    )


def serve(ex: Exchange, hit: CacheHit, kind: str | None = None) -> None:
    ex.response, ex.cache = response_from(
        hit, route=ex.plan.route, started=ex.call.started, kind=kind
    )


def check_model(models: Mapping[str, Any], model: str) -> None:
    """Raise UnknownModelError unless ``model`` is ``auto`` or a configured model."""
    if model != AUTO and model not in models:
        raise UnknownModelError(model, [AUTO, *sorted(models)])
