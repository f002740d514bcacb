"""Load ``routes/*.yaml`` into validated :class:`Route` objects, with precise errors.

Every refusal names the file, the line where known and the field: YAML syntax errors,
unknown keys, empty or non-string utterances, duplicate route names across files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from intent_router.errors import RouteFileError
from intent_router.routing.schema import Route

ROUTE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class RouteSet:
    """The routes of one folder, in a stable order (by name), with their fingerprints."""

    routes: tuple[Route, ...]
    sources: dict[str, Path]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.routes]

    def get(self, name: str) -> Route:
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)

    @property
    def fingerprint(self) -> str:
        """Hash of everything the index is built from (names and utterances, in order).

        Editing a chain, threshold, description or cache policy needs no rebuild; adding,
        removing or editing an utterance or a route does.
        """
        digest = hashlib.sha256()
        for route in self.routes:
            digest.update(route_fingerprint(route).encode())
        return digest.hexdigest()[:32]


def route_fingerprint(route: Route) -> str:
    payload = json.dumps([route.name, route.utterances], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def load_routes(folder: str | Path) -> RouteSet:
    """Read every route file of ``folder``; raise :class:`RouteFileError` on the first problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RouteFileError("routes folder does not exist", path=folder)
    files = sorted(p for p in folder.iterdir() if p.suffix in ROUTE_SUFFIXES and p.is_file())
    if not files:
        raise RouteFileError("no route files (*.yaml) in the routes folder", path=folder)
    routes: dict[str, Route] = {}
    sources: dict[str, Path] = {}
    for path in files:
        route = load_route_file(path)
        if route.name in routes:
            raise RouteFileError(
                f"duplicate route name '{route.name}' (also defined in {sources[route.name]})",
                path=path,
                field="name",
            )
        routes[route.name] = route
        sources[route.name] = path
    ordered = tuple(routes[name] for name in sorted(routes))
    return RouteSet(routes=ordered, sources=sources)


def load_route_file(path: Path) -> Route:
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise RouteFileError(f"YAML syntax error: {problem}", path=path, line=line) from exc
    if not isinstance(data, dict):
        raise RouteFileError(
            f"a route file must be a mapping of keys, got {type(data).__name__}", path=path, line=1
        )
    data.setdefault("name", path.stem)
    try:
        return Route.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc: Sequence[Any] = first["loc"]
        field = ".".join(str(part) for part in loc) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(Route.model_fields)
            message = f"unknown key (allowed: {allowed})"
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise RouteFileError(message, path=path, line=_line_of(node, loc), field=field) from None


def _line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (keys, then list indexes), if found."""
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    node = value_node
                    line = int(key_node.start_mark.line) + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = int(node.start_mark.line) + 1
        else:
            return line
    return line
