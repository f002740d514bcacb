"""What a request may cost at worst, before it is sent, and what a cut stream cost.

The worst case is priced on the most expensive model of the chain that may answer:
the estimated input tokens (:meth:`ChatRequest.estimated_input_tokens`, the estimate
``count_tokens`` and the context-window check use) at its input price, plus the output
the request allows (``max_tokens`` / ``max_completion_tokens``, else the models file's
``budgets.default_output_tokens``, times ``n`` choices) at its output price.
"""

from __future__ import annotations

from collections.abc import Sequence

from intent_router.models import ModelsConfig
from intent_router.providers import ChatRequest


def worst_case_usd(request: ChatRequest, chain: Sequence[str], models: ModelsConfig) -> float:
    """The most the request can cost on any model of ``chain`` (0 for an empty chain)."""
    input_tokens = request.estimated_input_tokens()
    output = request.max_tokens or models.budgets.default_output_tokens
    output_tokens = output * (request.n or 1)
    costs = [
        models.models[name].cost_usd(input_tokens, output_tokens)
        for name in chain
        if name in models.models
    ]
    return max(costs, default=0.0)


def cut_stream_usd(
    request: ChatRequest, model: str, models: ModelsConfig, output_chars: int
) -> float:
    """What a stream cut before its usage arrived cost: the estimated input and the text
    sent so far (~4 characters a token) at ``model``'s prices."""
    spec = models.models.get(model)
    if spec is None:
        return 0.0
    return spec.cost_usd(request.estimated_input_tokens(), (output_chars + 3) // 4)
