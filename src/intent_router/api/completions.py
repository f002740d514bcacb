"""Completion endpoints: ``POST /complete`` and the OpenAI-compatible ``/v1`` surface."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from fastapi.responses import JSONResponse, StreamingResponse

from intent_router import openai_compat
from intent_router.api.deps import Gateway
from intent_router.api.schemas import CompleteRequest
from intent_router.gateway import AUTO, Plan
from intent_router.providers import ChatResponse

router = APIRouter()


def _headers(plan: Plan, response: ChatResponse | None) -> dict[str, str]:
    headers = {"x-intent-router-route": plan.route or "none"}
    if plan.decision is not None:
        headers["x-intent-router-score"] = f"{plan.decision.score:.4f}"
    if response is not None:
        headers["x-intent-router-model"] = response.model
    return headers


@router.post("/complete")
async def complete(body: CompleteRequest, gateway: Gateway, response: Response) -> dict[str, Any]:
    plan, answer = await gateway.complete(body.to_canonical(), model=body.model)
    response.headers.update(_headers(plan, answer))
    return {**answer.to_dict(), "routing": plan.to_dict()}


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    gateway: Gateway, payload: Annotated[dict[str, Any], Body()]
) -> JSONResponse | StreamingResponse:
    body = openai_compat.parse_request(payload)
    request = openai_compat.to_canonical(body)
    model = body.model or AUTO
    if not body.stream:
        plan, answer = await gateway.complete(request, model=model, endpoint="chat.completions")
        return JSONResponse(openai_compat.completion_body(answer), headers=_headers(plan, answer))
    plan, events = await gateway.stream(request, model=model, endpoint="chat.completions")
    lines = openai_compat.sse_lines(
        events, model=plan.chain[0] if plan.chain else model, include_usage=body.include_usage
    )
    return StreamingResponse(
        lines,
        media_type="text/event-stream",
        headers={**_headers(plan, None), "cache-control": "no-cache"},
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

