"""The operator console: a static page shipped in the package, and the two JSON feeds it
draws (a query's decision, live traffic). No CDN, no build step: ``console_static/``."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from intent_router.api.deps import Service
from intent_router.gateway import Gateway
from intent_router.observability.cache_preview import preview_cache
from intent_router.observability.traffic import TrafficStats

router = APIRouter(include_in_schema=False)

ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
# The page may talk to this server only: no outside scripts, styles, fonts or requests.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _asset(name: str) -> bytes:
    return resources.files("intent_router.api").joinpath("console_static", name).read_bytes()


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1)


@router.get("/console")
async def page() -> Response:
    return Response(
        _asset("index.html"),
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": CSP, "cache-control": "no-cache"},
    )


@router.get("/console/static/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail=f"no console file {name!r}")
    return Response(_asset(name), media_type=ASSETS[name], headers={"cache-control": "no-cache"})


@router.post("/console/api/explain")
async def explain(body: ExplainRequest, service: Service, request: Request) -> dict[str, Any]:
    """The decision for a query, every route's score, its nearest utterances, and what the
    response cache would do; nothing is dispatched, stored or counted."""
    explanation, routed = await service.explain(body.query)
    gateway = request.state.gateway
    decision = routed.decision
    cache = await preview_cache(
        gateway.runtime.cache if gateway is not None else None,
        service.clean_query(body.query)[0],
        routed.vector,
        route=decision.route,
        chain=list(decision.chain),
    )
    return {**explanation.to_dict(), "truncated": routed.truncated, "cache": cache}


@router.get("/console/api/traffic")
async def traffic(request: Request) -> dict[str, Any]:
    """Requests by route over time, latency percentiles per model, cache, fallbacks,
    breakers and cost (empty when the server routes only)."""
    gateway: Gateway | None = request.state.gateway
    if gateway is None:
        return TrafficStats().snapshot()  # routing only: no traffic to show
    return gateway.traffic.snapshot(breakers=gateway.runtime.dispatcher.breaker_states())
