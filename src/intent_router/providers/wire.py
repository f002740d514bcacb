"""Small pieces shared by the adapters that translate (Anthropic, Gemini)."""

from __future__ import annotations

from typing import Any

from intent_router.providers.tools import Tool


def add_turn(turns: list[dict[str, Any]], role: str, key: str, items: list[Any]) -> None:
    """Append a turn, merging it into the last one when the role is the same (both APIs
    expect alternating turns: tool results and the user text after them go together)."""
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def declaration(tool: Tool, schema_key: str) -> dict[str, Any]:
    """A function tool as ``{name, description?, <schema_key>: JSON Schema}``."""
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        spec["description"] = tool.description
    spec[schema_key] = tool.schema()
    return spec
