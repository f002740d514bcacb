"""Completion endpoints: ``POST /complete`` and the OpenAI-compatible ``/v1`` surface."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse, StreamingResponse

from intent_router import openai_compat
from intent_router.api.deps import Access, Gateway, RequestId
from intent_router.api.schemas import COMPLETION_ERRORS, ERRORS, CompleteRequest
from intent_router.cache import parse_cache_control
from intent_router.gateway import AUTO, Plan
from intent_router.providers import ChatResponse
from intent_router.request_cache import CacheInfo
from intent_router.wire_schema import CROSS_FIELD_RULES

router = APIRouter()


CacheControl = Annotated[str | None, Header(alias="cache-control")]


def router_headers(plan: Plan, response: ChatResponse | None, cache: CacheInfo) -> dict[str, str]:
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


@router.post("/complete", responses=COMPLETION_ERRORS)
async def complete(
    body: CompleteRequest,
    gateway: Gateway,
    response: Response,
    access: Access,
    cache_control: CacheControl = None,
    request_id: RequestId = None,
) -> dict[str, Any]:
    answer = await gateway.complete(
        body.to_canonical(),
        model=body.model,
        directives=parse_cache_control(cache_control),
        request_id=request_id,
        access=access,
    )
    response.headers.update(router_headers(answer.plan, answer.response, answer.cache))
    return {
        **answer.response.to_dict(),
        "routing": answer.plan.to_dict(),
        "cache": answer.cache.to_dict(),
    }


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=COMPLETION_ERRORS,
    description=CROSS_FIELD_RULES,
)
async def chat_completions(
    gateway: Gateway,
    body: openai_compat.ChatCompletionRequest,
    access: Access,
    cache_control: CacheControl = None,
    request_id: RequestId = None,
) -> JSONResponse | StreamingResponse:
    """OpenAI Chat Completions; ``model: "auto"`` (or no model) routes, a model name pins it.

    Fields this schema does not list are accepted and passed on.
    """
    request = openai_compat.to_canonical(body)
    model = body.model or AUTO
    directives = parse_cache_control(cache_control)
    if not body.stream:
        answer = await gateway.complete(
            request,
            model=model,
            endpoint="chat.completions",
            directives=directives,
            request_id=request_id,
            access=access,
        )
        return JSONResponse(
            {**openai_compat.completion_body(answer.response), "x_cache": answer.cache.to_dict()},
            headers=router_headers(answer.plan, answer.response, answer.cache),
        )
    stream = await gateway.stream(
        request,
        model=model,
        endpoint="chat.completions",
        directives=directives,
        request_id=request_id,
        access=access,
    )
    lines = openai_compat.sse_lines(
        stream.events, model=stream.model, include_usage=body.include_usage
    )
    headers = router_headers(stream.plan, None, stream.cache)
    headers["x-intent-router-model"] = stream.model
    return StreamingResponse(
        lines, media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"}
    )


def _model_card(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "intent-router"}


@router.get("/v1/models", responses=ERRORS)
async def list_models(gateway: Gateway) -> dict[str, Any]:
    created = int(time.time())
    names = [AUTO, *sorted(gateway.runtime.models.models)]
    return {"object": "list", "data": [_model_card(name, created) for name in names]}


@router.get("/v1/models/{model_id:path}", responses=ERRORS)
async def get_model(model_id: str, gateway: Gateway) -> dict[str, Any]:
    """One model: ``auto`` or a configured name; 404 ``model_not_found`` otherwise."""
    gateway.check_model(model_id)
    return _model_card(model_id, int(time.time()))
