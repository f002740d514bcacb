"""The Anthropic-compatible ingress: ``POST /v1/messages`` and its ``count_tokens``.

Same gateway as ``/v1/chat/completions`` (routing, cache, dispatch); only the wire format
differs. Errors here take Anthropic's shape (``api/errors.py`` picks it by path). With API
keys on (``--keys``), the SDK's ``x-api-key`` (or ``Authorization: Bearer``) carries the
router's key (``api/access.py``); without keys neither header is looked at.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from intent_router import anthropic_compat, anthropic_render
from intent_router.anthropic_compat import CountTokensRequest, MessagesRequest
from intent_router.api.completions import CacheControl, router_headers
from intent_router.api.deps import Access, Gateway, RequestId
from intent_router.cache import parse_cache_control
from intent_router.wire_schema import CROSS_FIELD_RULES

router = APIRouter()


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicError(BaseModel):
    """Anthropic's error object, on ``/v1/messages`` only."""

    type: str = "error"
    error: AnthropicErrorDetail


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    why = {
        400: "invalid_request_error: validation, bad JSON, prompt too long for every model",
        404: "not_found_error: unknown model",
        502: "api_error: every model of the chain failed",
        503: "overloaded_error: no model could be tried; Retry-After if known",
    }
    return {s: {"model": AnthropicError, "description": why[s]} for s in statuses}


@router.post(
    "/v1/messages",
    response_model=None,
    responses=_errors(400, 404, 502, 503),
    description=CROSS_FIELD_RULES,
)
async def messages(
    gateway: Gateway,
    body: MessagesRequest,
    access: Access,
    cache_control: CacheControl = None,
    request_id: RequestId = None,
) -> JSONResponse | StreamingResponse:
    """Anthropic Messages; ``model: "auto"`` routes, a configured model name pins it.

    Fields this schema does not list are accepted and passed on.
    """
    request = anthropic_compat.to_canonical(body)
    directives = parse_cache_control(cache_control)
    if not body.stream:
        answer = await gateway.complete(
            request,
            model=body.model,
            endpoint="messages",
            directives=directives,
            request_id=request_id,
            access=access,
        )
        return JSONResponse(
            {**anthropic_render.message_body(answer.response), "x_cache": answer.cache.to_dict()},
            headers=router_headers(answer.plan, answer.response, answer.cache),
        )
    stream = await gateway.stream(
        request, model=body.model, endpoint="messages", directives=directives,
        request_id=request_id, access=access,
    )  # fmt: skip
    lines = anthropic_render.sse_events(
        stream.events, model=stream.model, input_tokens=request.estimated_input_tokens()
    )
    headers = router_headers(stream.plan, None, stream.cache)
    headers["x-intent-router-model"] = stream.model
    return StreamingResponse(
        lines, media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"}
    )


@router.post(
    "/v1/messages/count_tokens", responses=_errors(400, 404), description=CROSS_FIELD_RULES
)
async def count_tokens(gateway: Gateway, body: CountTokensRequest) -> dict[str, int]:
    """An ESTIMATE of the prompt's tokens (4 characters a token, images at a flat price),
    the same the router uses to skip models whose context window is too small."""
    gateway.check_model(body.model)
    return {"input_tokens": anthropic_compat.to_canonical(body).estimated_input_tokens()}
