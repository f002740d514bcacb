"""Request and response bodies of the HTTP API (the wire contract, validated by FastAPI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intent_router.providers import ChatRequest, Message


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="The user request to route; whitespace-only is refused.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must contain non-whitespace text")
        return value


class CandidateOut(BaseModel):
    route: str
    score: float


class RouteResponse(BaseModel):
    route: str | None = Field(description="The chosen route, or null when none is close enough.")
    score: float
    threshold: float
    candidates: list[CandidateOut]
    chain: list[str]
    encoder: str | None = Field(default=None, description="The encoder whose vector decided.")
    lang: str | None = Field(default=None, description="The query's identified language.")
    truncated: bool = Field(description="True when the query was cut to max_query_chars.")


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


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class CompleteRequest(BaseModel):
    """``{"query": "..."}`` or ``{"messages": [...]}``, plus generation parameters."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = None
    messages: list[ChatMessage] | None = None
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
