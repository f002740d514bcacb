"""Replay recorded traffic against candidate routes: which decisions would change?

Input is a decision log (``serve --decision-log``; one JSON row per request) or a
labelled eval file (JSONL ``{"text", "route"}``). Each recorded prompt is routed again by a
:class:`~intent_router.service.RouterService` over the candidate routes — the server's own
matcher, thresholds (fitted ones included) and conversation logic — and the new route is
compared with the recorded one.

Which rows are replayed:

* a row needs its ``prompt``: the server writes it only with ``--log-prompts redacted`` or
  ``full`` (redacted prompts are routed as written, placeholders and all; a placeholder
  may route differently from the text it replaced). Rows without it are skipped
  (``no_prompt``);
* a request pinned to a model was not routed (``pinned``);
* a conversation is logged with its last user message only: a row whose earlier turns
  took part (``conversation.context_turns``, or ``decided_by: "context"`` in older logs)
  cannot be reproduced and is skipped (``multi_turn``). Every other row is routed as a
  one-turn conversation, exactly as the server routed it.

With a labelled file the "before" decisions come from the baseline routes (the server's
route folder) and both sides are scored against the labels.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import (
    BlockThresholds,
    RouteIndex,
    Thresholds,
    load_index,
    save_thresholds,
)
from intent_router.errors import DatasetError, IndexError_, QueryError
from intent_router.routing.evaluation import json_rows, load_dataset
from intent_router.routing.loader import RouteSet, load_routes
from intent_router.service import RouterService, prepare_index

NONE = "none"  # the label of "no route" in the matrix (as in the metrics)
EXAMPLES_PER_CELL = 3
CHUNK = 64  # prompts routed concurrently (they share encoder batches)


@dataclass(frozen=True)
class Recorded:
    """One request to replay: its text, the route it got (or its gold label)."""

    line: int
    text: str
    route: str | None
    request_id: str | None = None


@dataclass
class Traffic:
    """What a decision log holds: the rows to replay and the rest, counted by reason."""

    requests: int = 0
    rows: list[Recorded] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def is_labelled(path: Path) -> bool:
    """A labelled eval file: its first row has ``text`` and ``route`` and no ``request_id``."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return False
                return isinstance(row, dict) and "text" in row and "request_id" not in row
    return False


def read_decision_log(path: Path) -> Traffic:
    """Read the rows of a decision log; a line that is not a JSON object is refused."""
    if not path.is_file():
        raise DatasetError("decision log does not exist", path=path)
    traffic = Traffic()
    for number, row in json_rows(path):
        if "route" not in row:
            raise DatasetError("not a decision-log row (no route)", path=path, line=number)
        traffic.requests += 1
        reason = skip_reason(row)
        if reason is not None:
            traffic.skipped[reason] += 1
            continue
        traffic.rows.append(Recorded(number, row["prompt"], row["route"], row.get("request_id")))
    return traffic


def skip_reason(row: dict[str, Any]) -> str | None:
    """Why a decision-log row cannot be replayed (None: it can)."""
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "no_prompt"
    if row.get("pinned_model"):
        return "pinned"
    conversation = row.get("conversation") or {}
    if conversation.get("context_turns") or row.get("decided_by") == "context":
        return "multi_turn"
    return None


async def route_all(service: RouterService, texts: Sequence[str]) -> list[str | None]:
    """Each text's route as the server decides a one-turn conversation (``service`` started)."""

    async def one(text: str) -> str | None:
        try:
            routed = await service.route_conversation([("user", text)])
        except QueryError:
            return None
        return routed.decision.route

    routes: list[str | None] = []
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        routes.extend(await asyncio.gather(*(one(text) for text in chunk)))
    return routes


@dataclass
class ReplayReport:
    requests: int
    replayed: int
    skipped: dict[str, int]
    changed: int
    matrix: dict[str, dict[str, int]]  # from → to → count (unchanged pairs included)
    examples: dict[str, list[str]]  # "from -> to" → a few prompts that moved
    accuracy: dict[str, float] | None = None  # labelled data: before / after

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "requests": self.requests,
            "replayed": self.replayed,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
            "changed": self.changed,
            "matrix": self.matrix,
            "examples": self.examples,
        }
        if self.accuracy is not None:
            body["accuracy"] = self.accuracy
        return body

    def format(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
        lines = [
            f"requests {self.requests}, replayed {self.replayed}, skipped "
            f"{sum(self.skipped.values())}" + (f" ({reasons})" if reasons else ""),
            f"changed {self.changed}"
            + (f" ({self.changed / self.replayed:.1%} of replayed)" if self.replayed else ""),
        ]
        if self.accuracy is not None:
            before, after = self.accuracy["before"], self.accuracy["after"]
            lines.append(f"accuracy {before:.2%} -> {after:.2%} ({after - before:+.2%})")
        moves = [(a, b, n) for a, row in self.matrix.items() for b, n in row.items() if a != b]
        if moves:
            lines.append("from -> to (changed decisions):")
            for a, b, n in sorted(moves, key=lambda m: (-m[2], m[0], m[1])):
                lines.append(f"  {a} -> {b}: {n}")
                lines.extend(f"      {text!r}" for text in self.examples.get(f"{a} -> {b}", []))
        return "\n".join(lines)


def compare(
    rows: Sequence[Recorded],
    after: Sequence[str | None],
    *,
    requests: int,
    skipped: Counter[str] | None = None,
    labels: Sequence[str | None] | None = None,
) -> ReplayReport:
    """Count the decisions that changed between ``rows`` (before) and ``after``."""
    matrix: dict[str, dict[str, int]] = {}
    examples: dict[str, list[str]] = {}
    changed = 0
    for row, new in zip(rows, after, strict=True):
        a, b = row.route or NONE, new or NONE
        matrix.setdefault(a, {}).setdefault(b, 0)
        matrix[a][b] += 1
        if row.route != new:
            changed += 1
            cell = examples.setdefault(f"{a} -> {b}", [])
            if len(cell) < EXAMPLES_PER_CELL:
                cell.append(row.text)
    accuracy = None
    if labels is not None and rows:
        right_before = sum(r.route == gold for r, gold in zip(rows, labels, strict=True))
        right_after = sum(new == gold for new, gold in zip(after, labels, strict=True))
        accuracy = {"before": right_before / len(rows), "after": right_after / len(rows)}
    return ReplayReport(
        requests=requests,
        replayed=len(rows),
        skipped=dict(skipped or {}),
        changed=changed,
        matrix=matrix,
        examples=examples,
        accuracy=accuracy,
    )


@dataclass(frozen=True)
class Sources:
    """Where replay reads from: the candidate routes and folders for the indexes."""

    candidate: Path
    index: Path  # the candidate's index folder (``--index``, or a scratch folder)
    fitted_from: Path  # an index whose fitted thresholds carry over to a fresh build
    baseline: Path | None = None  # labelled data: the routes the "before" column uses
    baseline_index: Path | None = None


async def replay(
    settings: Settings, encoder: Encoder, log: Path, sources: Sources, *, labelled: bool
) -> tuple[ReplayReport, list[str]]:
    """Route the recorded prompts of ``log`` against the candidate routes; compare."""
    notes: list[str] = []
    candidate = load_routes(sources.candidate)
    index, note = index_for(settings, encoder, candidate, sources.index, sources.fitted_from)
    notes += [note] if note else []
    if not labelled:
        traffic = read_decision_log(log)
        texts = [r.text for r in traffic.rows]
        after = await _routes(settings, encoder, candidate, index, texts)
        report = compare(traffic.rows, after, requests=traffic.requests, skipped=traffic.skipped)
        return report, notes
    if sources.baseline is None or sources.baseline_index is None:
        raise DatasetError("a labelled file needs baseline routes to compare with", path=log)
    baseline = load_routes(sources.baseline)
    examples = load_dataset(log)
    texts = [e.text for e in examples]
    base_index, note = index_for(
        settings, encoder, baseline, sources.baseline_index, sources.fitted_from
    )
    notes += [note] if note else []
    before = await _routes(settings, encoder, baseline, base_index, texts)
    after = await _routes(settings, encoder, candidate, index, texts)
    rows = [Recorded(i, e.text, b) for i, (e, b) in enumerate(zip(examples, before, strict=True))]
    labels = [e.route for e in examples]
    return compare(rows, after, requests=len(rows), labels=labels), notes


async def _routes(
    settings: Settings, encoder: Encoder, routes: RouteSet, index: RouteIndex, texts: list[str]
) -> list[str | None]:
    service = RouterService(settings, encoder, routes, index)
    await service.start()
    try:
        return await route_all(service, texts)
    finally:
        await service.aclose()


def index_for(
    settings: Settings, encoder: Encoder, routes: RouteSet, folder: Path, fitted_from: Path
) -> tuple[RouteIndex, str | None]:
    """The index of ``routes`` in ``folder``: its build when it matches, else built there
    (incrementally). A new build has no fitted thresholds; the ones the server used (those
    of ``fitted_from``, or of the build it replaced) carry over, for routes that remain."""
    fitted = _fitted(folder, encoder) or _fitted(fitted_from, encoder)
    seed, cache = fitted_from / "embedding-cache", folder / "embedding-cache"
    if seed.is_dir() and not cache.exists():  # the server's vectors: the same, and no re-embedding
        shutil.copytree(seed, cache)
    index = prepare_index(
        settings.model_copy(update={"index_dir": folder}), encoder, routes, build=True
    )
    own = index.thresholds
    if own.global_threshold is not None or own.per_route or fitted is None:
        return index, None
    names = set(routes.names)
    carried = Thresholds(
        global_threshold=fitted[1].global_threshold,
        per_route={k: v for k, v in fitted[1].per_route.items() if k in names},
        fitted_on=fitted[1].fitted_on,
        fitted_at=fitted[1].fitted_at,
        objective=fitted[1].objective,
        blocks={  # a hybrid's other blocks (per-language heads), for the routes that remain
            name: BlockThresholds(
                global_threshold=block.global_threshold,
                per_route={k: v for k, v in block.per_route.items() if k in names},
            )
            for name, block in fitted[1].blocks.items()
        },
    )
    save_thresholds(index, carried)
    return index, f"fitted thresholds of {fitted[0]} applied to the index of {folder}"


def _fitted(folder: Path, encoder: Encoder) -> tuple[Path, Thresholds] | None:
    """The fitted thresholds of ``folder``'s build (same encoder), if it has any."""
    try:
        index = load_index(folder, encoder_id=encoder.id)
    except IndexError_:
        return None
    t = index.thresholds
    has_fit = t.global_threshold is not None or bool(t.per_route)
    return (index.folder or folder, t) if has_fit else None
