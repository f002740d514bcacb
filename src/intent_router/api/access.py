"""Authentication at the edge: with ``--keys`` every request must carry a valid key.

A pure ASGI middleware (streaming-safe), outside the admission queue so that a key's
priority can order it. For every path except ``/healthz``, ``/readyz`` and the console's
page and static files (no data in them), it reads ``Authorization: Bearer <key>`` or
``x-api-key: <key>``, looks it up (by hash) and puts a
:class:`~intent_router.access.context.RequestAccess` for the caller in
``request.state.access``; a missing, unknown or revoked key is answered 401 at once
(OpenAI's error shape; Anthropic's on ``/v1/messages``). The console's data endpoints and
``/metrics`` (they show everyone's traffic) also take the admin key
(``INTENT_ROUTER_ADMIN_KEY``); ``/admin/*`` is left to the ``Admin`` dependency.

Answers to keyed requests carry OpenAI's ``x-ratelimit-*`` headers when the key has
limits. Without ``--keys`` this middleware is not installed: every request is anonymous.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intent_router.access.auth import Authenticator
from intent_router.access.context import RequestAccess, TeamLimits
from intent_router.access.keys import KeyStore
from intent_router.access.principal import Principal
from intent_router.access.ratelimit import RateLimiter
from intent_router.access.stores import key_store, rate_limiter
from intent_router.api.admin_auth import is_admin_key, presented_key
from intent_router.api.errors import describe
from intent_router.config import Settings
from intent_router.errors import AccessError
from intent_router.models import ModelsConfig

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/console"})
OPEN_PREFIXES = ("/console/static/",)
ADMIN_PREFIX = "/admin"
ADMIN_TOO = ("/console/", "/metrics")  # may be read with the admin key as well
ADMIN = Principal(key_id="admin", name="admin")


class AccessControl:
    """The key store and the rate limiter of one app; closed by its lifespan."""

    def __init__(
        self, store: KeyStore, limiter: RateLimiter, teams: Mapping[str, TeamLimits] | None = None
    ) -> None:
        self.store = store
        self.authenticator = Authenticator(store)
        self.limiter = limiter
        self.teams = dict(teams or {})  # set by the lifespan from the models file

    async def access(self, path: str, secret: str | None) -> RequestAccess:
        if path.startswith(ADMIN_TOO) and is_admin_key(secret):
            return RequestAccess(ADMIN)
        principal = await self.authenticator.authenticate(secret)
        team = self.teams.get(principal.team) if principal.team else None
        return RequestAccess(principal, self.limiter, team)

    async def aclose(self) -> None:
        await self.store.aclose()
        await self.limiter.aclose()


def needs_key(path: str) -> bool:
    return not (
        path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or path.startswith(ADMIN_PREFIX)
    )


class AccessMiddleware:
    def __init__(self, app: ASGIApp, control: AccessControl) -> None:
        self.app = app
        self.control = control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not needs_key(scope["path"]):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        try:
            access = await self.control.access(path, presented_key(Request(scope)))
        except AccessError as exc:
            response = describe(exc).response(path)
            if response.status_code == 401:
                response.headers["www-authenticate"] = 'Bearer realm="intent-router"'
            await response(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["access"] = access

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = access.headers()
                if extra:
                    have = {k.lower() for k, _ in message.get("headers", [])}
                    added = [(k.encode(), v.encode()) for k, v in extra.items()
                             if k.encode() not in have]  # fmt: skip
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_limits)


def team_limits(models: ModelsConfig) -> dict[str, TeamLimits]:
    """The models file's ``team_limits``."""
    return {name: TeamLimits(spec.rpm, spec.tpm) for name, spec in models.team_limits.items()}


def make_control(settings: Settings) -> AccessControl | None:
    """The access control the settings ask for; None: keys off (open, as without keys)."""
    store = key_store(settings.keys_file, settings.keys_redis_url, settings.keys_namespace)
    if store is None:
        return None
    return AccessControl(store, rate_limiter(settings.keys_redis_url, settings.keys_namespace))


def install(app: FastAPI, settings: Settings) -> AccessControl | None:
    """Put the key check in front of ``app`` (outside admission); ``app.state.access``."""
    control = make_control(settings)
    app.state.access = control
    if control is not None:
        app.add_middleware(AccessMiddleware, control=control)
    return control


def open_warning(host: str, settings: Settings) -> None:
    """Say at start-up that the router is open; loudly when others can reach it."""
    if settings.keys_file is not None or settings.keys_redis_url is not None:
        return
    if host in ("127.0.0.1", "::1", "localhost"):
        log.warning(
            "no API keys (--keys): anyone who can reach %s may call the router and spend "
            "its provider credit; fine for local use",
            host,
        )
        return
    bar = "!" * 78
    log.error(
        "\n%s\nNO AUTHENTICATION: the router is bound to %s without --keys.\nAnyone who can "
        "reach this address can spend your provider credit and read cached answers.\n"
        "Create keys with `intent-router keys create --keys keys.json --name NAME` and "
        "start with --keys keys.json.\n%s",
        bar, host, bar,
    )  # fmt: skip
