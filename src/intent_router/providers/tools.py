"""What a request offers the model beyond the conversation: tools and the output format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from intent_router.errors import QueryError

ToolMode = Literal["auto", "none", "required", "function"]
FormatType = Literal["text", "json_object", "json_schema"]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is its JSON Schema."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    strict: bool | None = None

    def schema(self) -> dict[str, Any]:
        """The parameters schema, ``{"type": "object"}`` when the tool takes none."""
        return dict(self.parameters) if self.parameters else {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``auto`` / ``none`` / ``required``, or ``function`` with the one ``name`` to call."""

    mode: ToolMode
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.mode == "function") != (self.name is not None):
            raise QueryError("tool_choice: a function choice needs exactly one function name")


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``text``, ``json_object`` (any JSON object) or ``json_schema`` (``schema`` given)."""

    type: FormatType
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None

    def __post_init__(self) -> None:
        if self.type == "json_schema" and (self.name is None or self.schema is None):
            raise QueryError("response_format: json_schema needs json_schema.name and .schema")

    @property
    def is_json(self) -> bool:
        return self.type != "text"
