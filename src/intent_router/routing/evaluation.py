"""Labelled data sets and routing metrics, shared by `fit`, `eval` and the benchmarks.

A data set is JSON lines: ``{"text": "...", "route": "name"}``, with ``"route": null`` for
a query that must match no route (out of scope), and optionally ``"lang": "es"`` (the
language the text is written in; `fit` and `eval` then also report per language).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intent_router.errors import DatasetError


@dataclass(frozen=True)
class Example:
    text: str
    route: str | None
    lang: str | None = None


def load_dataset(path: str | Path, *, known_routes: Sequence[str] | None = None) -> list[Example]:
    """Read a JSONL data set; every malformed row is refused with its line number."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("data set file does not exist", path=path)
    known = set(known_routes) if known_routes is not None else None
    examples = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"not valid JSON: {exc.msg}", path=path, line=number) from exc
            if not isinstance(row, dict):
                raise DatasetError("each line must be a JSON object", path=path, line=number)
            text, route = row.get("text"), row.get("route", "<missing>")
            if not isinstance(text, str) or not text.strip():
                raise DatasetError("needs a non-empty string", path=path, line=number, field="text")
            if route is not None and not isinstance(route, str):
                raise DatasetError(
                    "must be a route name or null", path=path, line=number, field="route"
                )
            if known is not None and route is not None and route not in known:
                raise DatasetError(
                    f"unknown route '{route}' (known: {', '.join(sorted(known))})",
                    path=path,
                    line=number,
                    field="route",
                )
            lang = row.get("lang")
            if lang is not None and (not isinstance(lang, str) or not lang.strip()):
                raise DatasetError(
                    "must be a language code such as 'en' or 'es', or absent",
                    path=path,
                    line=number,
                    field="lang",
                )
            examples.append(Example(text=text, route=route, lang=lang))
    if not examples:
        raise DatasetError("data set is empty", path=path)
    return examples


@dataclass(frozen=True)
class Report:
    n: int
    in_scope_accuracy: float
    oos_recall: float
    overall_accuracy: float
    macro_f1: float
    per_route: dict[str, dict[str, float]]
    confusions: list[tuple[str, str, int]]

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "in_scope_accuracy": round(self.in_scope_accuracy, 4),
            "oos_recall": round(self.oos_recall, 4),
            "overall_accuracy": round(self.overall_accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
        }


OOS = "<none>"


def evaluate(gold: Sequence[str | None], predicted: Sequence[str | None]) -> Report:
    """Routing metrics; "no route" counts as one more class in accuracy and macro-F1."""
    pairs = [(g or OOS, p or OOS) for g, p in zip(gold, predicted, strict=True)]
    in_scope = [(g, p) for g, p in pairs if g != OOS]
    oos = [(g, p) for g, p in pairs if g == OOS]
    labels = sorted({g for g, _ in pairs} | {p for _, p in pairs})
    per_route: dict[str, dict[str, float]] = {}
    f1s = []
    for label in labels:
        tp = sum(1 for g, p in pairs if g == label and p == label)
        fp = sum(1 for g, p in pairs if g != label and p == label)
        fn = sum(1 for g, p in pairs if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_route[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
        if tp + fn:
            f1s.append(f1)
    confusions = Counter((g, p) for g, p in pairs if g != p)
    return Report(
        n=len(pairs),
        in_scope_accuracy=_share(in_scope),
        oos_recall=_share(oos),
        overall_accuracy=_share(pairs),
        macro_f1=sum(f1s) / len(f1s) if f1s else 0.0,
        per_route=per_route,
        confusions=[(g, p, n) for (g, p), n in confusions.most_common(10)],
    )


def evaluate_by_language(
    examples: Sequence[Example], predicted: Sequence[str | None]
) -> dict[str, Report]:
    """One :func:`evaluate` per language of the examples that say theirs (sorted by code);
    empty when none does."""
    langs = sorted({e.lang for e in examples if e.lang is not None})
    return {
        lang: evaluate(
            [e.route for e in examples if e.lang == lang],
            [p for e, p in zip(examples, predicted, strict=True) if e.lang == lang],
        )
        for lang in langs
    }


def format_languages(reports: dict[str, Report]) -> str:
    """One line per language: examples, in-scope accuracy, out-of-scope recall, overall."""
    lines = [f"{'language':<10} {'n':>5} {'in-scope':>9} {'oos recall':>11} {'overall':>8}"]
    for lang, r in reports.items():
        lines.append(
            f"{lang:<10} {r.n:>5} {_pct(r.in_scope_accuracy):>9} {_pct(r.oos_recall):>11}"
            f" {_pct(r.overall_accuracy):>8}"
        )
    return "\n".join(lines)


def _pct(value: float) -> str:
    return "-" if value != value else f"{value:.1%}"  # NaN: no such examples


def _share(pairs: Sequence[tuple[str, str]]) -> float:
    return sum(1 for g, p in pairs if g == p) / len(pairs) if pairs else float("nan")


def format_report(report: Report) -> str:
    lines = [
        f"examples: {report.n}",
        f"in-scope accuracy: {report.in_scope_accuracy:.2%}",
        f"out-of-scope recall: {report.oos_recall:.2%}",
        f"overall accuracy: {report.overall_accuracy:.2%}",
        f"macro F1: {report.macro_f1:.4f}",
        "",
        f"{'route':<28} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}",
    ]
    for label, m in sorted(report.per_route.items()):
        lines.append(
            f"{label:<28} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f}"
            f" {int(m['support']):>5}"
        )
    if report.confusions:
        lines += ["", "most confused (gold -> predicted):"]
        lines += [f"  {g} -> {p}: {n}" for g, p, n in report.confusions]
    return "\n".join(lines)
