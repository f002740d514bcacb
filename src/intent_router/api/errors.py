"""The one place where errors become HTTP responses, in the shapes the SDKs understand.

Every error answer of the API is an OpenAI error object::

    {"error": {"message": "…", "type": "invalid_request_error", "param": "model", "code": null}}

except on the Anthropic ingress (``/v1/messages…``), which answers Anthropic's shape::

    {"type": "error", "error": {"type": "invalid_request_error", "message": "..."}}

=====================================  ======  ========================  ======================
cause                                  status  type                      code
=====================================  ======  ========================  ======================
validation, bad JSON, content type     400     invalid_request_error     (param = field path)
prompt too long for every model        400     invalid_request_error     context_length_exceeded
personal data, no pii_approved model   400     invalid_request_error     pii_not_approved
no, wrong or revoked API key          401     authentication_error      invalid_api_key
key may not use this model/route       403     permission_error          model_not_allowed
rate limit (RPM/TPM) used up           429     rate_limit_error          rate_limit_exceeded
budget spent                           429     insufficient_quota        insufficient_quota
key or limit store (Redis) down        503     service_unavailable       access_unavailable
unknown model                          404     invalid_request_error     model_not_found
unknown path / feature off             404     invalid_request_error     not_found
method not allowed                     405     invalid_request_error     method_not_allowed
body over the size limit               413     invalid_request_error     request_too_large
every upstream failed                  502     upstream_error            upstream_failed
no model could be tried / deadline     503     service_unavailable       no_model_available
bug or broken configuration            500     server_error              internal_error
=====================================  ======  ========================  ======================

5xx answers carry ``Retry-After`` when waiting is known to help; the request body is never
echoed back.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from intent_router.errors import (
    AccessUnavailableError,
    AuthenticationError,
    BudgetExceededError,
    ChainExhaustedError,
    ContextLengthExceededError,
    IntentRouterError,
    NotConfiguredError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
    UnknownModelError,
)

log = logging.getLogger(__name__)

ANTHROPIC_PREFIX = "/v1/messages"
# Anthropic's error types by status (its SDK picks the exception class from the status).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large",
    429: "rate_limit_error", 503: "overloaded_error",
}  # fmt: skip
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def error_body(
    message: str, type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def anthropic_error_body(message: str, status: int) -> dict[str, Any]:
    """Anthropic's error object, its ``type`` chosen by the HTTP status."""
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


@dataclass(frozen=True)
class ApiError:
    """An error answer before it is given a shape."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. the dispatch attempts
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. x-ratelimit-*

    def response(self, path: str) -> JSONResponse:
        """The JSON answer for a request to ``path`` (Anthropic's shape on its ingress)."""
        if path.startswith(ANTHROPIC_PREFIX):
            body = anthropic_error_body(self.message, self.status)
        else:
            body = error_body(self.message, self.type, param=self.param, code=self.code)
        body["error"].update(self.extra)
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["retry-after"] = str(max(1, math.ceil(self.retry_after)))
        return JSONResponse(body, status_code=self.status, headers=headers)


def describe(exc: IntentRouterError) -> ApiError:
    """The HTTP status, type and code of one of our errors."""
    if isinstance(exc, UnknownModelError):
        return ApiError(404, str(exc), param=exc.param, code=exc.code)
    if isinstance(exc, ContextLengthExceededError):
        return ApiError(400, str(exc), param=exc.param, code=exc.code,
                        extra={"attempts": _attempts(exc.attempts)})  # fmt: skip
    if isinstance(exc, QueryError):
        return ApiError(400, str(exc), param=exc.param or _leading_path(str(exc)), code=exc.code)
    if isinstance(exc, AuthenticationError):
        return ApiError(401, str(exc), type="authentication_error", code="invalid_api_key")
    if isinstance(exc, PermissionDeniedError):
        code = "model_not_allowed" if exc.param == "model" else "not_allowed"
        return ApiError(403, str(exc), type="permission_error", param=exc.param, code=code)
    if isinstance(exc, RateLimitedError):
        return ApiError(429, str(exc), type="rate_limit_error", code="rate_limit_exceeded",
                        retry_after=exc.retry_after, headers=exc.headers)  # fmt: skip
    if isinstance(exc, BudgetExceededError):
        return ApiError(429, str(exc), type="insufficient_quota", code="insufficient_quota",
                        retry_after=exc.retry_after)  # fmt: skip
    if isinstance(exc, AccessUnavailableError):
        return ApiError(503, str(exc), type="service_unavailable", code="access_unavailable",
                        retry_after=1.0)  # fmt: skip
    if isinstance(exc, NotConfiguredError):
        return ApiError(404, str(exc), code="not_found")
    if isinstance(exc, ChainExhaustedError):
        upstream = exc.status != 503
        return ApiError(
            exc.status,
            str(exc),
            type="upstream_error" if upstream else "service_unavailable",
            code="upstream_failed" if upstream else "no_model_available",
            retry_after=exc.retry_after,
            extra={"attempts": _attempts(exc.attempts)},
        )
    return ApiError(500, str(exc), type="server_error", code="internal_error")


def from_validation(errors: Sequence[Any], body: Any, content_type: str | None) -> ApiError:
    """A 400 for FastAPI's request validation errors: the first problem and its field path.

    Errors about the body as a whole say what was wrong with it (no JSON, bad JSON, wrong
    content type) without echoing it back.
    """
    first = errors[0]
    loc = list(first.get("loc", ()))
    where = loc[0] if loc else "body"
    path = loc[1:]
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        at = f" at position {path[0]}" if path and isinstance(path[0], int) else ""
        return ApiError(400, f"the request body is not valid JSON{at}: {detail}".rstrip(": "))
    if where == "body" and not path:
        if not _is_json(content_type):
            got = f"'{content_type}'" if content_type else "none"
            return ApiError(400, f"Content-Type must be application/json (got {got})")
        if first.get("type") == "missing":
            return ApiError(400, "the request body is empty: send a JSON object")
    # A union reports one error per member: the one that got deepest is the one meant.
    located = [(field_path(list(e["loc"])[1:], body if where == "body" else None, e["type"]), e)
               for e in errors if list(e.get("loc", ()))[:1] == [where]]  # fmt: skip
    param = max((p for p, _ in located), key=lambda p: len(p or ""), default=None)
    same = [e for p, e in located if p == param]
    reasons = "; or ".join(dict.fromkeys(_reason(e) for e in same))
    message = f"{param}: {reasons}" if param else reasons
    if where != "body":
        message = f"{where} {message}"
    return ApiError(400, message, param=param)


def field_path(loc: Sequence[Any], body: Any, last_missing: str = "") -> str | None:
    """``messages[0].content`` from a pydantic location, dropping union member tags.

    A location part is kept when it indexes the body (a key present in a mapping, an index
    of a list); a missing key is kept when it is the last part of a ``missing`` error.
    Without the body, every part is kept.
    """
    out = ""
    node = body
    for i, part in enumerate(loc):
        if body is not None:
            indexes = isinstance(node, list) and isinstance(part, int) and part < len(node)
            if indexes or (isinstance(node, Mapping) and part in node):
                node = node[part]
            elif not (i == len(loc) - 1 and last_missing == "missing"):
                continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


_PATH_PREFIX = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*): ")


def _leading_path(message: str) -> str | None:
    """The field path a request error's message starts with (``messages[2].role: …``)."""
    match = _PATH_PREFIX.match(message)
    return match.group(1) if match else None


def _reason(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _attempts(attempts: Sequence[object]) -> list[object]:
    return [a.to_dict() if hasattr(a, "to_dict") else a for a in attempts]


def from_http(exc: HTTPException, request: Request) -> ApiError:
    status = exc.status_code
    if status == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    kind = "invalid_request_error" if status < 500 else "server_error"
    return ApiError(status, message, type=kind, code=_HTTP_CODES.get(status))


async def _ours(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntentRouterError)
    error = describe(exc)
    if error.status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, error.status, exc)
    return error.response(request.url.path)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = from_validation(exc.errors(), exc.body, request.headers.get("content-type"))
    return error.response(request.url.path)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = from_http(exc, request).response(request.url.path)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    error = ApiError(500, "internal error", type="server_error", code="internal_error")
    response = error.response(request.url.path)
    request_id = getattr(request.state, "request_id", None)
    if request_id:  # this answer leaves outside the middleware that sets the header
        response.headers["x-request-id"] = request_id
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(IntentRouterError, _ours)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
