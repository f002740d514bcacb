"""Labelled data sets and routing metrics, shared by `fit`, `eval` and the benchmarks.

A data set is JSON lines: ``{"text": "...", "route": "name"}``, with ``"route": null`` for
a query that must match no route (out of scope), and optionally ``"lang": "es"`` (the
language the text is written in; ``fit`` and ``eval`` then also report per language).

Besides accuracy, a report says how refusals happened: out-of-scope queries refused by a
``kind: none`` route versus by the threshold, and queries whose top route was refused by
one of its ``negatives`` — rightly (the query did not belong to that route) or wrongly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intent_router.errors import DatasetError


@dataclass(frozen=True)
class Example:
    text: str
    route: str | None
    lang: str | None = None


def json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSON-lines file with their line numbers (blank lines skipped);
    a line that is not a JSON object is refused with its number."""
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
            yield number, row


def load_dataset(path: str | Path, *, known_routes: Sequence[str] | None = None) -> list[Example]:
    """Read a JSONL data set; every malformed row is refused with its line number."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("data set file does not exist", path=path)
    known = set(known_routes) if known_routes is not None else None
    examples = []
    for number, row in json_rows(path):
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
    refusals: Refusals | None = None

    def summary(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "n": self.n,
            "in_scope_accuracy": round(self.in_scope_accuracy, 4),
            "oos_recall": round(self.oos_recall, 4),
            "overall_accuracy": round(self.overall_accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
        }
        if self.refusals is not None:
            figures.update(self.refusals.summary())
        return figures


@dataclass(frozen=True)
class Refusals:
    """How queries were refused (from the decisions' ``reason`` and ``repelled``)."""

    oos: int  # out-of-scope rows
    oos_by_reason: dict[str, int]  # refused out-of-scope rows by reason
    in_scope_by_reason: dict[str, int]  # wrongly refused in-scope rows by reason
    negatives_refused: int  # rows whose top route was refused by one of its negatives
    negatives_refused_correctly: int  # ... and the row did not belong to that route

    def summary(self) -> dict[str, Any]:
        by_none = self.oos_by_reason.get("none_route", 0)
        return {
            "oos_refused_by_none_route": round(by_none / self.oos, 4) if self.oos else None,
            "negatives_refused": self.negatives_refused,
            "negatives_refused_correctly": self.negatives_refused_correctly,
        }


def count_refusals(
    gold: Sequence[str | None],
    predicted: Sequence[str | None],
    reasons: Sequence[str],
    repelled_top: Sequence[str | None],
) -> Refusals:
    """``repelled_top``: per row, the top-scoring route if its negatives refused it."""
    oos_by: Counter[str] = Counter()
    in_by: Counter[str] = Counter()
    for g, p, reason in zip(gold, predicted, reasons, strict=True):
        if p is None:
            (oos_by if g is None else in_by)[reason] += 1
    refused = [(g, r) for g, r in zip(gold, repelled_top, strict=True) if r is not None]
    return Refusals(
        oos=sum(1 for g in gold if g is None),
        oos_by_reason=dict(oos_by),
        in_scope_by_reason=dict(in_by),
        negatives_refused=len(refused),
        negatives_refused_correctly=sum(1 for g, r in refused if g != r),
    )


OOS = "<none>"


def evaluate(
    gold: Sequence[str | None],
    predicted: Sequence[str | None],
    refusals: Refusals | None = None,
) -> Report:
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
        refusals=refusals,
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
    if report.refusals is not None:
        lines += ["", *_refusal_lines(report.refusals)]
    if report.confusions:
        lines += ["", "most confused (gold -> predicted):"]
        lines += [f"  {g} -> {p}: {n}" for g, p, n in report.confusions]
    return "\n".join(lines)


def _refusal_lines(r: Refusals) -> list[str]:
    def reasons(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"

    refused = sum(r.oos_by_reason.values())
    return [
        f"out-of-scope refused: {refused} of {r.oos} ({reasons(r.oos_by_reason)})",
        f"in-scope refused: {sum(r.in_scope_by_reason.values())} ({reasons(r.in_scope_by_reason)})",
        f"negatives refused the top route of {r.negatives_refused} queries: "
        f"{r.negatives_refused_correctly} correctly (the query did not belong to it), "
        f"{r.negatives_refused - r.negatives_refused_correctly} wrongly",
    ]
