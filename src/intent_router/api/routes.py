"""HTTP handlers: thin, each calls one thing on the service."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from intent_router.api.deps import Service
from intent_router.api.schemas import (
    BAD_REQUEST,
    HealthResponse,
    RouteInfo,
    RouteRequest,
    RouteResponse,
    RoutesResponse,
)

router = APIRouter()


@router.post("/route", response_model=RouteResponse, responses=BAD_REQUEST)
async def route(body: RouteRequest, service: Service) -> RouteResponse:
    started = time.perf_counter()
    if body.messages is not None:
        routed = await service.route_conversation([(m.role, m.content) for m in body.messages])
    else:
        routed = await service.route(body.query or "")
    turns = routed.conversation.to_dict() if routed.conversation else {}
    service.metrics.observe_route(routed.decision.route, time.perf_counter() - started)
    return RouteResponse(**routed.decision.to_dict(), **turns, truncated=routed.truncated)


@router.get("/routes", response_model=RoutesResponse)
async def routes(service: Service) -> RoutesResponse:
    matcher = service.matcher
    infos = [
        RouteInfo(
            name=name,
            description=service.routes.get(name).description,
            utterances=len(service.routes.get(name).utterances),
            threshold=float(matcher.thresholds[0, i]),  # a hybrid's first block (English)
            chain=matcher.chains[i],
        )
        for i, name in enumerate(matcher.names)
    ]
    return RoutesResponse(routes=infos, default_chain=matcher.default_chain)


@router.get("/healthz", response_model=HealthResponse)
async def healthz(service: Service) -> HealthResponse:
    manifest = service.index.manifest
    return HealthResponse(
        status="ok",
        routes=manifest["counts"]["routes"],
        utterances=manifest["counts"]["utterances"],
        encoder=manifest["encoder"]["id"],
        index_built_at=manifest["built_at"],
    )


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    body = request.app.state.metrics.exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
