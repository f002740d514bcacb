"""Read a YAML config file into (data, node tree) and point validation errors at lines.

Shared by the route files and the models file, so both refuse bad input the same way:
the file, the line where known, and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from intent_router.errors import ConfigError


def read_mapping(
    path: Path, error: type[ConfigError], what: str
) -> tuple[dict[str, Any], yaml.Node | None]:
    """The top-level mapping of ``path`` and its node tree; ``error`` names any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", path=path) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"YAML syntax error: {problem}", path=path, line=line) from exc
    if not isinstance(data, dict):
        raise error(
            f"a {what} must be a mapping of keys, got {type(data).__name__}", path=path, line=1
        )
    duplicate = first_duplicate_key(node)
    if duplicate is not None:
        key, line, first = duplicate
        raise error(f"duplicate key '{key}' (first defined on line {first})", path=path, line=line)
    return data, node


def field_error(loc: Sequence[str | int], message: str) -> PydanticCustomError:
    """An error a model validator raises to point at a nested field (``ctx['loc']``)."""
    return PydanticCustomError("field_error", "{message}", {"message": message, "loc": loc})

def first_duplicate_key(node: yaml.Node | None) -> tuple[str, int, int] | None:
    """The first key defined twice in one mapping: (key, its line, the first one's line).

    PyYAML silently keeps the later value; a models file defining a model twice must not.
    """
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = int(key.start_mark.line) + 1
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    return key.value, line, seen[key.value]
                seen[key.value] = line
            found = first_duplicate_key(value)
            if found is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = first_duplicate_key(item)
            if found is not None:
                return found
    return None


def validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    node: yaml.Node | None,
    path: Path,
    error: type[ConfigError],
) -> ConfigError:
    """The first problem of ``exc`` as ``error``, with the YAML line of its field."""
    first = exc.errors()[0]
    loc: Sequence[Any] = first.get("ctx", {}).get("loc") or first["loc"]
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = f"unknown key (allowed: {', '.join(_allowed(model, loc))})"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    field = ".".join(str(part) for part in loc) or None
    return error(message, path=path, line=line_of(node, loc), field=field)


def _allowed(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys allowed where an unknown key was found (top level only is resolved)."""
    return list(model.model_fields) if len(loc) == 1 else ["see the documentation"]


def line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (keys, then list indexes), if found."""
    if node is None:
        return None
    line: int = int(node.start_mark.line) + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == str(part)), None)
            if match is None:
                return line
            key, node = match
            line = int(key.start_mark.line) + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = int(node.start_mark.line) + 1
        else:
            return line
    return line
