"""Request and response bodies of the HTTP API (the wire contract, validated by FastAPI)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
