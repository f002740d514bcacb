"""Pure translation for our OpenAI-compatible ``/v1/chat/completions`` (no FastAPI here).

* :class:`ChatCompletionRequest` — the inbound body; unknown OpenAI fields are ignored,
  non-text or non system/user/assistant messages are rejected (``developer`` counts as
  ``system``; text content parts are joined).
* :func:`parse_request` — dict → model, raising :class:`QueryError` with a clear message.
* :func:`to_canonical` — model → :class:`ChatRequest`.
* :func:`completion_body` — :class:`ChatResponse` → ``chat.completion`` JSON.
* :func:`sse_lines` — dispatcher stream events → ``chat.completion.chunk`` SSE lines,
  ending ``data: [DONE]``; a :class:`StreamError` becomes ``data: {"error": {...}}``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intent_router.errors import QueryError
from intent_router.providers.base import (
    ChatRequest,
    ChatResponse,
    DispatchEvent,
    Message,
    StreamDone,
    StreamError,
    TextDelta,
)
from intent_router.wire_schema import HAS_USER_TEXT

_ROLE_ALIASES = {"developer": "system"}


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class InboundMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]

    @field_validator("role", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return _ROLE_ALIASES.get(value, value) if isinstance(value, str) else value

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The subset of the OpenAI body we honour; other fields are accepted (``model_extra``)."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[InboundMessage] = Field(min_length=1, json_schema_extra=HAS_USER_TEXT)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


def parse_request(body: Mapping[str, Any]) -> ChatCompletionRequest:
    """Validate an inbound body; errors become one QueryError naming the field."""
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        if where.startswith("messages.") and err["type"] in ("literal_error", "string_type"):
            hint = "only system/user/assistant messages with text content are supported"
            raise QueryError(f"{where}: {err['msg']} ({hint})") from exc
        raise QueryError(f"{where}: {err['msg']}" if where else err["msg"]) from exc


def to_canonical(body: ChatCompletionRequest) -> ChatRequest:
    stop: list[str] = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    return ChatRequest(
        messages=[Message(role=m.role, content=m.text()) for m in body.messages],
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        stop=stop,
        stream=body.stream,
    )


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _usage(response: ChatResponse) -> dict[str, int]:
    return {
        "prompt_tokens": response.input_tokens,
        "completion_tokens": response.output_tokens,
        "total_tokens": response.input_tokens + response.output_tokens,
    }


def router_meta(response: ChatResponse) -> dict[str, Any]:
    """What the router did, as an extra ``x_router`` field (OpenAI clients ignore it)."""
    meta = response.to_dict()
    meta.pop("text")
    return meta


def completion_body(
    response: ChatResponse, *, completion_id: str | None = None, created: int | None = None
) -> dict[str, Any]:
    return {
        "id": completion_id or new_completion_id(),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": response.text},
                "finish_reason": response.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(response),
        "x_router": router_meta(response),
    }


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def sse_lines(
    events: AsyncIterator[DispatchEvent],
    *,
    model: str,
    include_usage: bool = False,
    completion_id: str | None = None,
    created: int | None = None,
) -> AsyncIterator[str]:
    """OpenAI ``chat.completion.chunk`` SSE lines for a dispatcher stream.

    Nothing is yielded before the dispatcher's first event, so a ChainExhaustedError
    surfaces from the first ``anext()`` and can still become a plain HTTP error.
    ``model`` labels chunks until the final event names the model that answered.
    """
    base = {
        "id": completion_id or new_completion_id(),
        "object": "chat.completion.chunk",
        "created": created if created is not None else int(time.time()),
    }

    def chunk(delta: dict[str, Any], finish: str | None, label: str) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse({**base, "model": label, "choices": [choice]})

    iterator = aiter(events)
    try:
        event = await anext(iterator)  # may raise ChainExhaustedError: nothing sent yet
        yield chunk({"role": "assistant", "content": ""}, None, model)
        while True:
            if isinstance(event, TextDelta):
                yield chunk({"content": event.text}, None, model)
            elif isinstance(event, StreamDone):
                response = event.response
                yield chunk({}, response.finish_reason, response.model)
                if include_usage:
                    usage = {
                        **base,
                        "model": response.model,
                        "choices": [],
                        "usage": _usage(response),
                    }
                    yield _sse({**usage, "x_router": router_meta(response)})
                yield "data: [DONE]\n\n"
                return
            elif isinstance(event, StreamError):
                yield _sse({"error": _error(event)})
                return
            following = await anext(iterator, None)
            if following is None:  # no final event: tell the client rather than hang up
                following = StreamError("stream ended unexpectedly", model, None, ())
            event = following
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _error(event: StreamError) -> dict[str, Any]:
    return {
        "message": event.message,
        "type": "upstream_error",
        "code": event.status if event.status is not None else 502,
        "model": event.model,
    }
