"""Completion endpoints: ``POST /complete`` and the OpenAI-compatible ``/v1`` surface."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response
from fastapi.responses import JSONResponse, StreamingResponse

from intent_router import openai_compat
from intent_router.api.deps import Gateway
from intent_router.api.schemas import CompleteRequest
from intent_router.cache import parse_cache_control
from intent_router.gateway import AUTO, Plan
from intent_router.providers import ChatResponse
from intent_router.request_cache import CacheInfo

router = APIRouter()


CacheControl = Annotated[str | None, Header(alias="cache-control")]

# OpenAI request fields that change the answer but that the canonical request does not carry.
_SCOPE_FIELDS = ("tools", "tool_choice", "response_format", "top_p", "seed", "n",
                 "presence_penalty", "frequency_penalty", "logit_bias")  # fmt: skip


def _headers(plan: Plan, response: ChatResponse | None, cache: CacheInfo) -> dict[str, str]:
    headers = {"x-intent-router-route": plan.route or "none"}
    if plan.decision is not None:
        headers["x-intent-router-score"] = f"{plan.decision.score:.4f}"
    if response is not None:
        headers["x-intent-router-model"] = response.model
    headers["x-intent-router-cache"] = cache.hit or "miss"
    if cache.hit is not None:
        headers["x-intent-router-cache-similarity"] = f"{cache.similarity or 0:.4f}"
        headers["age"] = str(int(cache.age_s or 0))
    return headers


@router.post("/complete")
async def complete(
    body: CompleteRequest, gateway: Gateway, response: Response, cache_control: CacheControl = None
) -> dict[str, Any]:
    answer = await gateway.complete(
        body.to_canonical(), model=body.model, directives=parse_cache_control(cache_control)
    )
    response.headers.update(_headers(answer.plan, answer.response, answer.cache))
    return {
        **answer.response.to_dict(),
        "routing": answer.plan.to_dict(),
        "cache": answer.cache.to_dict(),
    }


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    gateway: Gateway,
    payload: Annotated[dict[str, Any], Body()],
    cache_control: CacheControl = None,
) -> JSONResponse | StreamingResponse:
    body = openai_compat.parse_request(payload)
    request = openai_compat.to_canonical(body)
    model = body.model or AUTO
    directives = parse_cache_control(cache_control)
    scope = {k: payload[k] for k in _SCOPE_FIELDS if payload.get(k) is not None}
    if not body.stream:
        answer = await gateway.complete(
            request, model=model, endpoint="chat.completions", directives=directives,
            extra_scope=scope,
        )  # fmt: skip
        return JSONResponse(
            {**openai_compat.completion_body(answer.response), "x_cache": answer.cache.to_dict()},
            headers=_headers(answer.plan, answer.response, answer.cache),
        )
    plan, cache, events = await gateway.stream(
        request, model=model, endpoint="chat.completions", directives=directives, extra_scope=scope
    )
    lines = openai_compat.sse_lines(
        events, model=plan.chain[0] if plan.chain else model, include_usage=body.include_usage
    )
    return StreamingResponse(
        lines,
        media_type="text/event-stream",
        headers={**_headers(plan, None, cache), "cache-control": "no-cache"},
    )


@router.get("/v1/models")
async def list_models(gateway: Gateway) -> dict[str, Any]:
    created = int(time.time())
    names = [AUTO, *sorted(gateway.models.models)]
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "intent-router"}
            for name in names
        ],
    }
