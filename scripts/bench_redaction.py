"""Measure PII redaction on the labelled set: per-type recall and precision, leaks, and
false redactions on hard negatives.

Usage (from the repo root)::

    python scripts/bench_redaction.py [--data scripts/data/pii.jsonl] [--show]

Each line of the data set is ``{"id", "text", "pii": [{"type", "value"}], "category"?}``;
``value`` is the exact substring of ``text`` that is personal data (the first occurrence).
A labelled item counts as found when findings of its type cover all of it; it *leaks* when
its value is still in the redacted text. A finding that touches no labelled item is a false
redaction. Prints a readable report and ends with ONE line holding a JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from intent_router.observability.redact import KINDS, Finding, redact

DEFAULT_DATA = Path(__file__).parent / "data" / "pii.jsonl"
# Inputs that make careless patterns backtrack: time per character against the data set's.
ADVERSARIAL = {
    "plus and 40 digits": ("+" + "1" * 40 + " ") * 100,
    "spaced digits": "1 2 3 4 5 6 7 8 9 0 " * 400,
    "dashed digits": "1-" * 2000,
    "hex and colons": "a:" * 2000,
    "a long word": "a" * 10_000,
    "password words": "password: " * 400,
}


def per_char_s(texts: list[str], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            redact(text)
        best = min(best, time.perf_counter() - started)
    return best / sum(len(t) for t in texts)


def load(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        for item in row["pii"]:
            if item["type"] not in KINDS or item["value"] not in row["text"]:
                sys.exit(f"{path}:{n}: bad label {item}")
        rows.append(row)
    return rows


def covered(findings: list[Finding], kind: str, start: int, end: int) -> bool:
    chars = set(range(start, end))
    for f in findings:
        if f.kind == kind:
            chars -= set(range(f.start, f.end))
    return not chars


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--show", action="store_true", help="print every miss and false hit")
    args = parser.parse_args()
    rows = load(args.data)

    labelled: Counter[str] = Counter()
    found: Counter[str] = Counter()
    leaked: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    true_pred: Counter[str] = Counter()
    false_by_category: Counter[str] = Counter()
    negatives = negatives_touched = 0
    kept_chars = clean_chars = 0
    for row in rows:
        text = row["text"]
        redacted, findings = redact(text)
        spans = []
        for item in row["pii"]:
            start = text.index(item["value"])
            spans.append((item["type"], start, start + len(item["value"])))
            labelled[item["type"]] += 1
            if covered(findings, item["type"], start, start + len(item["value"])):
                found[item["type"]] += 1
            elif args.show:
                print(f"  miss  {row['id']} {item['type']}: {item['value']!r} → {redacted!r}")
            if item["value"] in redacted:
                leaked[item["type"]] += 1
        for f in findings:
            predicted[f.kind] += 1
            if any(k == f.kind and f.start < e and s < f.end for k, s, e in spans):
                true_pred[f.kind] += 1
            elif not any(f.start < e and s < f.end for _, s, e in spans):
                false_by_category[row.get("category", "positive")] += 1
                if args.show:
                    print(f"  false {row['id']} {f.kind}: {text[f.start : f.end]!r} in {text!r}")
        in_pii = {i for _, s, e in spans for i in range(s, e)}
        redacted_chars = {i for f in findings for i in range(f.start, f.end)}
        clean = [i for i in range(len(text)) if i not in in_pii]
        clean_chars += len(clean)
        kept_chars += sum(i not in redacted_chars for i in clean)
        if not row["pii"]:
            negatives += 1
            negatives_touched += bool(findings)

    print(f"{len(rows)} texts, {sum(labelled.values())} labelled items, {negatives} negatives")
    print(f"{'type':8} {'items':>6} {'recall':>8} {'leaked':>7} {'found':>6} {'precision':>10}")
    per_type: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        recall = found[kind] / labelled[kind] if labelled[kind] else 0.0
        precision = true_pred[kind] / predicted[kind] if predicted[kind] else 1.0
        per_type[kind] = {
            "items": labelled[kind],
            "recall": round(recall, 4),
            "precision": round(precision, 4),
            "leaked": leaked[kind],
        }
        print(
            f"{kind:8} {labelled[kind]:6d} {recall:8.1%} {leaked[kind]:7d} "
            f"{predicted[kind]:6d} {precision:10.1%}"
        )
    total = sum(labelled.values())
    recall_all = sum(found.values()) / total
    precision_all = sum(true_pred.values()) / max(1, sum(predicted.values()))
    false_all = sum(false_by_category.values())
    kept = kept_chars / max(1, clean_chars)
    print(
        f"overall recall {recall_all:.1%}, precision {precision_all:.1%}, "
        f"items leaked {sum(leaked.values())} of {total}"
    )
    print(
        f"hard negatives with any redaction: {negatives_touched} of {negatives}; "
        f"false redactions by category: {dict(false_by_category) or 'none'}"
    )
    print(f"non-personal characters kept: {kept:.2%}")
    base = per_char_s([row["text"] for row in rows])
    ratios = {name: per_char_s([text]) / base for name, text in ADVERSARIAL.items()}
    worst = max(ratios, key=ratios.__getitem__)
    print(
        "time per character on adversarial inputs / on the data set (one run): "
        + ", ".join(f"{name} {r:.1f}x" for name, r in ratios.items())
    )
    summary = {
        "texts": len(rows),
        "items": total,
        "recall": round(recall_all, 4),
        "precision": round(precision_all, 4),
        "leaked": sum(leaked.values()),
        "false_redactions": false_all,
        "negatives": negatives,
        "negatives_touched": negatives_touched,
        "kept_chars": round(kept, 4),
        "adversarial_worst_ratio": round(ratios[worst], 2),
        "per_type": per_type,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
