"""Load ``routes/*.yaml`` into validated :class:`Route` objects, with precise errors.

Every refusal names the file, the line where known and the field: YAML syntax errors,
unknown keys, empty or non-string utterances, duplicate route names across files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from intent_router.errors import RouteFileError
from intent_router.routing.schema import Route
from intent_router.yamlfile import read_mapping, validation_error

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
    data, node = read_mapping(path, RouteFileError, "route file")
    data.setdefault("name", path.stem)
    try:
        return Route.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, Route, node, path, RouteFileError) from None
