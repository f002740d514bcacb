"""Request and response bodies of the HTTP API (the wire contract, validated by FastAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from intent_router.providers import ChatRequest, Message
from intent_router.wire_schema import HAS_USER_TEXT, NON_BLANK, not_null


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, upstream_error, service_unavailable …")
    param: str | None = Field(description="the offending field's path, e.g. messages[0].role")
    code: str | None = Field(description="model_not_found, context_length_exceeded …")


class ErrorResponse(BaseModel):
    """The OpenAI error object, on every endpoint except ``/v1/messages``."""

    error: ErrorDetail


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    why = {
        400: "invalid request: validation, bad JSON, wrong content type, prompt too long "
        "for every model (code context_length_exceeded)",
        404: "unknown model (code model_not_found) or completions off",
        413: "request body over the size limit",
        502: "every model of the chain failed (the attempts are listed)",
        503: "no model could be tried (breakers open, deadline spent); Retry-After if known",
    }
    return {status: {"model": ErrorResponse, "description": why[status]} for status in statuses}


BAD_REQUEST = _errors(400)
ERRORS = _errors(400, 404)
COMPLETION_ERRORS = _errors(400, 404, 413, 502, 503)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


def _one_input_schema(schema: JsonDict) -> None:
    not_null("query", "messages")(schema)
    schema["oneOf"] = [{"required": ["query"]}, {"required": ["messages"]}]


class RouteRequest(BaseModel):
    """``{"query": "..."}`` or ``{"messages": [...]}`` (a conversation, routed as a whole)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_input_schema)

    query: str | None = Field(
        default=None,
        description="The user request to route; whitespace-only is refused.",
        json_schema_extra=NON_BLANK,
    )
    messages: list[ChatMessage] | None = Field(
        default=None,
        min_length=1,
        json_schema_extra=HAS_USER_TEXT,
        description="A conversation: its last user message is routed in the light of the "
        "earlier user messages (a follow-up stays on their route).",
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("query must contain non-whitespace text")
        return value

    @model_validator(mode="after")
    def _one_input(self) -> RouteRequest:
        if (self.query is None) == (self.messages is None):
            raise ValueError("give exactly one of 'query' or 'messages'")
        if self.messages is not None and not any(
            m.role == "user" and m.content.strip() for m in self.messages
        ):
            raise ValueError("messages must include a user message with text")
        return self


class CandidateOut(BaseModel):
    route: str
    score: float


class ConversationOut(BaseModel):
    why: str
    deciding_turns: list[int] = Field(description="Indexes into 'messages'.")
    last_turn: int
    last_turn_route: str | None
    last_turn_score: float
    context_turns: list[int]
    context_route: str | None
    context_score: float | None
    novel_route: str | None = Field(
        default=None,
        description="The route of the last turn with the earlier turns' direction removed.",
    )
    p_move: float | None = Field(
        default=None,
        description="The turn model's probability that the last turn leaves the earlier "
        "turns' route (null when a rule decided without it).",
    )


class RouteResponse(BaseModel):
    route: str | None = Field(description="The chosen route, or null when none is close enough.")
    score: float
    threshold: float
    candidates: list[CandidateOut]
    chain: list[str]
    reason: str = Field(
        default="matched",
        description="matched, below_threshold, none_route (a kind: none route won) or "
        "negatives (every route refused by its negatives).",
    )
    none_route: str | None = Field(
        default=None, description="The nearest kind: none route, when the route set has one."
    )
    none_score: float | None = Field(default=None, description="Its score (route scale).")
    repelled: list[str] = Field(
        default_factory=list, description="Routes refused for this query by their negatives."
    )
    encoder: str | None = Field(default=None, description="The encoder whose vector decided.")
    lang: str | None = Field(default=None, description="The query's identified language.")
    truncated: bool = Field(description="True when the query was cut to max_query_chars.")
    decided_by: Literal["last_turn", "context"] | None = Field(
        default=None,
        description="With 'messages': whether the last user message or the earlier ones "
        "decided the route; null for 'query'.",
    )
    conversation: ConversationOut | None = Field(
        default=None, description="With 'messages': which turns decided, and both readings."
    )


class RouteInfo(BaseModel):
    name: str
    description: str
    utterances: int
    threshold: float
    chain: list[str]


class RoutesResponse(BaseModel):
    routes: list[RouteInfo]
    default_chain: list[str]


class HealthResponse(BaseModel):
    status: str
    routes: int
    utterances: int
    encoder: str
    index_built_at: str


class CompleteRequest(BaseModel):
    """``{"query": "..."}`` or ``{"messages": [...]}``, plus generation parameters."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_input_schema)

    query: str | None = Field(default=None, json_schema_extra=NON_BLANK)
    messages: list[ChatMessage] | None = Field(
        default=None, min_length=1, json_schema_extra=HAS_USER_TEXT
    )
    model: str | None = Field(default=None, description="pin a model; 'auto' or absent routes")
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_input(self) -> CompleteRequest:
        if (self.query is None) == (self.messages is None):
            raise ValueError("give exactly one of 'query' or 'messages'")
        if self.query is not None and not self.query.strip():
            raise ValueError("query must contain non-whitespace text")
        if self.messages is not None and not self.messages:
            raise ValueError("messages must not be empty")
        return self

    def to_canonical(self) -> ChatRequest:
        if self.query is not None:
            messages = [Message(role="user", content=self.query)]
        else:
            messages = [Message(role=m.role, content=m.content) for m in self.messages or []]
        return ChatRequest(
            messages=messages,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            stop=self.stop,
        )
