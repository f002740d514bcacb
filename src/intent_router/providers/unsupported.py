"""Refuse, by name, what a provider's API cannot do (``n`` > 1, ``logprobs`` …).

Each adapter lists the canonical fields it cannot honour; :func:`refuse` raises
:class:`~intent_router.errors.UnsupportedFieldError` (a 400 for the client) for the first
one the request actually uses. Fields left at their default never count, so a request
with ``n: 1`` or ``logprobs: false`` passes everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from intent_router.errors import UnsupportedFieldError
from intent_router.providers.base import ChatRequest, Endpoint

Check = Callable[[ChatRequest], bool]

USED: Mapping[str, Check] = {
    "n": lambda r: r.n is not None and r.n > 1,
    "logprobs": lambda r: bool(r.logprobs),
    "top_logprobs": lambda r: r.top_logprobs is not None,
    "logit_bias": lambda r: bool(r.logit_bias),
    "presence_penalty": lambda r: bool(r.presence_penalty),
    "frequency_penalty": lambda r: bool(r.frequency_penalty),
    "reasoning_effort": lambda r: r.reasoning_effort is not None,
}


def refuse(
    endpoint: Endpoint,
    request: ChatRequest,
    fields: Mapping[str, str],
    translated_extra: frozenset[str] = frozenset(),
) -> None:
    """Raise for the first of ``fields`` (name → why) the request uses, and for ``extra``
    fields other than the ``translated_extra`` ones the adapter knows."""
    for name, why in fields.items():
        if USED[name](request):
            raise UnsupportedFieldError(name, endpoint.name, why)
    for name in set(request.extra) - translated_extra:
        raise UnsupportedFieldError(
            name, endpoint.name, "unknown fields pass only to OpenAI-compatible upstreams"
        )
