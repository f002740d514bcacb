"""Load ``routes/*.yaml`` into validated :class:`Route` objects, with precise errors.

Every refusal names the file, the line where known and the field: YAML syntax errors,
unknown keys, empty or non-string utterances, duplicate route names across files, keys a
``kind: none`` route may not have.

Repeated utterances are *not* refused: people paste traffic with duplicates. The copies
are dropped (the first occurrence stays, in file-name order) and each drop is a
:class:`LoadWarning` naming the file and line, within a route (``utterances`` or
``negatives``) and across routes (an utterance of two routes, or of a route and a
``kind: none`` route, stays only with the first). ``build`` prints them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from intent_router.errors import RouteFileError
from intent_router.routing.schema import Route, utterance_key
from intent_router.yamlfile import line_of, read_mapping, validation_error

log = logging.getLogger(__name__)

ROUTE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadWarning:
    """Something the loader fixed rather than refused (a dropped repeated utterance)."""

    path: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        line = f":{self.line}" if self.line is not None else ""
        return f"{self.path}{line}: field '{self.field}': {self.message}"


@dataclass(frozen=True)
class RouteSet:
    """The routes of one folder, in a stable order (by name), with their fingerprints.

    ``routes`` are the routes a query may go to; ``none_routes`` the ``kind: none`` ones
    (examples of requests that belong to no route).
    """

    routes: tuple[Route, ...]
    sources: dict[str, Path]
    none_routes: tuple[Route, ...] = ()
    warnings: tuple[LoadWarning, ...] = field(default=(), compare=False)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.routes]

    def get(self, name: str) -> Route:
        for route in (*self.routes, *self.none_routes):
            if route.name == name:
                return route
        raise KeyError(name)

    def model_lists(self) -> dict[str, list[str]]:
        """Every list of models the routes name (chains, variants, shadows), for the check
        against the models file: ``{"code": [...], "chat (variant b)": [...], ...}``."""
        return {where: models for r in self.routes for where, models in r.model_lists().items()}

    @property
    def fingerprint(self) -> str:
        """Hash of everything the index is built from (names, utterances, negatives, kinds).

        Editing a chain, threshold, description or cache policy needs no rebuild; adding,
        removing or editing an utterance, a negative or a route does.
        """
        digest = hashlib.sha256()
        for route in (*self.routes, *self.none_routes):
            digest.update(route_fingerprint(route).encode())
        return digest.hexdigest()[:32]


def route_fingerprint(route: Route) -> str:
    # Only what the index embeds; a route without negatives hashes as it always did.
    parts: list[Any] = [route.name, route.utterances]
    if route.is_none:
        parts.append("kind:none")
    if route.negatives:
        parts.append({"negatives": route.negatives})
    payload = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def load_routes(folder: str | Path) -> RouteSet:
    """Read every route file of ``folder``; raise :class:`RouteFileError` on the first problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RouteFileError("routes folder does not exist", path=folder)
    files = sorted(p for p in folder.iterdir() if p.suffix in ROUTE_SUFFIXES and p.is_file())
    if not files:
        raise RouteFileError("no route files (*.yaml) in the routes folder", path=folder)
    loaded: dict[str, _Loaded] = {}
    warnings: list[LoadWarning] = []
    for path in files:
        item = _load(path, warnings)
        name = item.route.name
        if name in loaded:
            raise RouteFileError(
                f"duplicate route name '{name}' (also defined in {loaded[name].path})",
                path=path,
                field="name",
            )
        loaded[name] = item
    routes = _drop_cross_route_repeats([loaded[name] for name in sorted(loaded)], warnings)
    for warning in warnings:
        log.warning("%s", warning)
    return RouteSet(
        routes=tuple(r for r in routes if not r.is_none),
        sources={name: item.path for name, item in loaded.items()},
        none_routes=tuple(r for r in routes if r.is_none),
        warnings=tuple(warnings),
    )


def load_route_file(path: Path) -> Route:
    """One route file on its own (repeats within it dropped, warnings logged)."""
    warnings: list[LoadWarning] = []
    route = _load(path, warnings).route
    for warning in warnings:
        log.warning("%s", warning)
    return route


@dataclass(frozen=True)
class _Loaded:
    route: Route
    path: Path
    node: yaml.Node | None
    lines: dict[str, list[int | None]]  # field -> YAML line of each kept item


def _load(path: Path, warnings: list[LoadWarning]) -> _Loaded:
    data, node = read_mapping(path, RouteFileError, "route file")
    data.setdefault("name", path.stem)
    lines: dict[str, list[int | None]] = {}
    for key in ("utterances", "negatives"):
        value = data.get(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            # Line numbers refer to the file as written, so they are taken before dropping.
            keep, lines[key] = _drop_repeats(value, key, path, node, warnings)
            data[key] = keep
    try:
        route = Route.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, Route, node, path, RouteFileError) from None
    return _Loaded(route, path, node, lines)


def _drop_repeats(
    items: list[str], key: str, path: Path, node: yaml.Node | None, warnings: list[LoadWarning]
) -> tuple[list[str], list[int | None]]:
    first: dict[str, int] = {}
    keep: list[str] = []
    lines: list[int | None] = []
    for i, text in enumerate(items):
        line = line_of(node, (key, i))
        norm = utterance_key(text)
        if norm in first and norm:
            where = lines[first[norm]]
            warnings.append(
                LoadWarning(
                    path,
                    line,
                    key,
                    f"item {i} repeats an earlier one (line {where}): {text!r}; copy dropped",
                )
            )
            continue
        first[norm] = len(keep)
        keep.append(text)
        lines.append(line)
    return keep, lines


def _drop_cross_route_repeats(items: list[_Loaded], warnings: list[LoadWarning]) -> list[Route]:
    """Each utterance stays with the first route that lists it; a negative that is one of its
    own route's utterances is dropped (it cannot be both)."""
    owner: dict[str, tuple[str, Path, int | None]] = {}
    result: list[Route] = []
    for item in items:
        route = item.route
        kept: list[str] = []
        for text, line in zip(route.utterances, item.lines["utterances"], strict=True):
            norm = utterance_key(text)
            if norm in owner:
                other, other_path, other_line = owner[norm]
                where = f"{other_path}:{other_line}" if other_line else str(other_path)
                warnings.append(
                    LoadWarning(
                        item.path,
                        line,
                        "utterances",
                        f"{text!r} is also an utterance of route '{other}' ({where}); "
                        "kept there, dropped here",
                    )
                )
                continue
            owner[norm] = (route.name, item.path, line)
            kept.append(text)
        if not kept:
            raise RouteFileError(
                "every utterance repeats one of an earlier route: nothing is left",
                path=item.path,
                line=line_of(item.node, ("utterances",)),
                field="utterances",
            )
        own = {utterance_key(t) for t in kept}
        negatives: list[str] = []
        for text, line in zip(route.negatives, item.lines.get("negatives", []), strict=True):
            if utterance_key(text) in own:
                warnings.append(
                    LoadWarning(
                        item.path,
                        line,
                        "negatives",
                        f"{text!r} is also an utterance of this route; negative dropped",
                    )
                )
                continue
            negatives.append(text)
        changed = len(kept) != len(route.utterances) or len(negatives) != len(route.negatives)
        result.append(
            route.model_copy(update={"utterances": kept, "negatives": negatives})
            if changed
            else route
        )
    return result
