"""The request path as a pipeline of small stages over one :class:`Exchange`.

::

    parse → admit → exact cache → embed and route → choose variant → permit → semantic cache
          → dispatch → store → (shadow calls, in the background) → record

(``admit``: the key's pinned model and rate limits; ``permit``: the chain cut to the key's
models. Both do nothing for an anonymous caller, i.e. without keys.)

* :mod:`.exchange` — the per-request context: the call (id, endpoint, start), the
  ChatRequest, cache directives, the ``principal``, the plan, ``skipped`` models, cache
  info, the response, the error; ``ex.runtime`` is captured once when the request starts.
* :mod:`.runtime` — :class:`Runtime`: router service, models config, dispatcher and request
  cache of ONE configuration (the cache that is off is a
  :class:`~intent_router.cache_off.NullCache`, never ``None``).
* :mod:`.stages` — the stages, each ``async def stage(ex: Exchange) -> None``; a stage that
  answers sets ``ex.response`` and the remaining ``PREPARE`` stages are skipped.
* :mod:`.recorder` — the record stage (metrics, log line, decision row, console traffic).
* :class:`intent_router.gateway.Gateway` runs them for ``complete`` and ``stream``.

How a stage is added (e.g. an access check after routing, a PII gate on the chain)::

    async def pii_gate(ex: Exchange) -> None:
        kept = [m for m in ex.plan.chain if allowed(m, ex.text)]
        ex.skipped += [(m, "pii") for m in ex.plan.chain if m not in kept]
        ex.plan = dataclasses.replace(ex.plan, chain=kept)

    PREPARE = (parse, exact_cache, embed_and_route, pii_gate, semantic_cache)

A stage refuses by raising an :mod:`intent_router.errors` error (the request is still
recorded); models it removes go to ``ex.skipped`` with the reason, and the decision row
shows them. Work around dispatch (a budget reservation: reserve before, settle or
release after, streams included) wraps :func:`.stages.dispatch` / the stream relay in the
gateway; work after the answer (a shadow call) goes after ``store``.
"""

from intent_router.pipeline.exchange import Answer, Call, Exchange, OpenStream, Plan
from intent_router.pipeline.runtime import Runtime

__all__ = ["Answer", "Call", "Exchange", "OpenStream", "Plan", "Runtime"]
