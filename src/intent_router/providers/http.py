"""The HTTP seam shared by the adapters: send, parse SSE, map foreign failures.

Every httpx exception and every bad upstream answer becomes an
:class:`~intent_router.errors.UpstreamError` here, with ``retryable`` set:

* 408, 425, 429, 500-599, connect errors, timeouts, dropped connections → retryable
  (``Retry-After`` in seconds or as an HTTP-date parsed into ``retry_after``);
* any other 4xx (400, 401, 403, 404, 422 …) → not retryable;
* a 200 whose body is not JSON or lacks the expected fields → not retryable.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from intent_router.errors import UpstreamError

RETRYABLE_STATUS = frozenset({408, 425, 429})
_MAX_DETAIL = 200


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def error_detail(body: str) -> str:
    """The upstream's own error message (OpenAI, Anthropic and Gemini use error.message)."""
    try:
        data = json.loads(body)
        message = data["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body
    return " ".join(str(message).split())[:_MAX_DETAIL]


def status_error(name: str, response: httpx.Response, body: str) -> UpstreamError:
    status = response.status_code
    retryable = status in RETRYABLE_STATUS or status >= 500
    detail = error_detail(body) or response.reason_phrase
    return UpstreamError(
        f"upstream answered {status}: {detail}",
        model=name,
        status=status,
        retryable=retryable,
        retry_after=parse_retry_after(response.headers.get("retry-after")) if retryable else None,
    )


def transport_error(name: str, exc: httpx.HTTPError) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        reason, retryable = f"timed out ({type(exc).__name__})", True
    elif isinstance(exc, httpx.ConnectError):
        reason, retryable = "connection failed", True
    elif isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        reason, retryable = f"connection dropped ({type(exc).__name__})", True
    else:
        reason, retryable = f"HTTP client error ({type(exc).__name__})", False
    return UpstreamError(reason, model=name, retryable=retryable)


def bad_answer(name: str, problem: str) -> UpstreamError:
    """A 200 we cannot use: move on to the next model."""
    return UpstreamError(f"unusable answer: {problem}", model=name, status=200)


async def post_json(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    *,
    headers: dict[str, str],
    payload: dict[str, Any],
    timeout_s: float,
) -> Any:
    """POST JSON, return the decoded JSON body of a 2xx or raise UpstreamError."""
    try:
        response = await client.post(url, json=payload, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise transport_error(name, exc) from exc
    if not response.is_success:
        raise status_error(name, response, response.text)
    try:
        return response.json()
    except ValueError as exc:
        raise bad_answer(name, "malformed JSON body") from exc


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.data)
        except ValueError as exc:
            raise bad_answer(name, "malformed JSON in stream event") from exc


@asynccontextmanager
async def open_sse(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    *,
    headers: dict[str, str],
    payload: dict[str, Any],
    timeout_s: float,
) -> AsyncIterator[AsyncIterator[SSEEvent]]:
    """POST and yield an iterator of server-sent events; failures become UpstreamError."""
    request = client.build_request("POST", url, json=payload, headers=headers, timeout=timeout_s)
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise transport_error(name, exc) from exc
    try:
        if not response.is_success:
            body = (await response.aread()).decode("utf-8", "replace")
            raise status_error(name, response, body)
        events = _events(name, response)
        try:
            yield events
        finally:
            await events.aclose()
    except httpx.HTTPError as exc:
        raise transport_error(name, exc) from exc
    finally:
        await response.aclose()


async def _events(name: str, response: httpx.Response) -> AsyncGenerator[SSEEvent, None]:
    event: str | None = None
    data: list[str] = []
    try:
        async for line in response.aiter_lines():
            if not line:
                if data:
                    yield SSEEvent(event, "\n".join(data))
                event, data = None, []
            elif line.startswith(":"):
                continue
            else:
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if key == "event":
                    event = value
                elif key == "data":
                    data.append(value)
    except httpx.HTTPError as exc:
        raise transport_error(name, exc) from exc
    if data:
        yield SSEEvent(event, "\n".join(data))


def dig(name: str, data: Any, *path: str | int, kind: type | tuple[type, ...] = object) -> Any:
    """``data[path0][path1]…`` or a non-retryable UpstreamError naming the missing field."""
    node = data
    for i, part in enumerate(path):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            where = ".".join(str(p) for p in path[: i + 1])
            raise bad_answer(name, f"missing field '{where}'") from None
    if not isinstance(node, kind):
        where = ".".join(str(p) for p in path)
        raise bad_answer(name, f"field '{where}' has type {type(node).__name__}")
    return node


def opt_int(data: Any, *path: str) -> int | None:
    """An optional integer field (usage counts), None when absent or not an int."""
    node = data
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node if isinstance(node, int) and not isinstance(node, bool) else None
