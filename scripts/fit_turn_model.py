"""Fit the conversation turn model (``routing/turn_weights.json``) and report its sweep.

Usage (from the repo root)::

    python scripts/fit_turn_model.py [--chats scripts/data/conversations.jsonl]
        [--splits train,dev] [--encoder hybrid] [--out src/intent_router/routing/turn_weights.json]

Every chat of ``--splits`` goes through what ``POST /route`` does (the shipped routes,
:func:`conversation.plan_turns`, one encoder batch, :func:`conversation.read`). The chats
that reach the model (earlier turns with a route, no topic-change phrase, and the last turn
or its novel part leaning elsewhere) are labelled: ``move`` when the right route is where a
moving turn goes and not the context's, ``stay`` when it is the context's and not the
other; the rest (neither reading is right) are left out. Logistic regression (L2, numpy,
Newton steps) with 5-fold cross-validation over chats chooses the L2 strength, then the
decision threshold that maximises the balanced accuracy (move and stay rows right, each
class counted equally) of the out-of-fold probabilities; the shipped model is refitted on
all of them at that strength. The other splits
(``holdout``, ``fresh``, ``test``) are never read here.

Prints the sweep and ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from intent_router.build import build_index
from intent_router.config import Settings
from intent_router.embedding.choice import load_encoder
from intent_router.routing import conversation
from intent_router.routing.turn_model import FEATURES, TurnModel
from intent_router.service import RouterService

REPO = Path(__file__).resolve().parent.parent
CHATS = REPO / "scripts" / "data" / "conversations.jsonl"
OUT = REPO / "src" / "intent_router" / "routing" / "turn_weights.json"
L2_GRID = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 5
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
Array = npt.NDArray[np.float64]


def main() -> int:
    args = _parser().parse_args()
    splits = set(args.splits.split(","))
    lines = Path(args.chats).read_text(encoding="utf-8").splitlines()
    chats = [json.loads(line) for line in lines if line.strip()]
    chats = [c for c in chats if c["split"] in splits]
    x, y = _labelled(chats, args.encoder)
    print(f"{len(chats)} chats of {sorted(splits)}; {len(y)} reach the model "
          f"({int(y.sum())} move, {int(len(y) - y.sum())} stay)")  # fmt: skip
    folds = np.arange(len(y)) % FOLDS
    best_l2, best_acc = L2_GRID[0], -1.0
    print(f"{'L2':>6} {'cv accuracy':>12} {'train accuracy':>15}")
    for l2 in L2_GRID:
        right = 0
        for k in range(FOLDS):
            w = _fit(x[folds != k], y[folds != k], l2)
            right += int(((_predict(x[folds == k], w) >= 0.5) == y[folds == k]).sum())
        w_all = _fit(x, y, l2)
        train = float(((_predict(x, w_all) >= 0.5) == y).mean())
        acc = right / len(y)
        print(f"{l2:6.2f} {acc:12.3f} {train:15.3f}")
        if acc > best_acc + 1e-9:
            best_l2, best_acc = l2, acc
    out_of_fold = np.zeros(len(y))
    for k in range(FOLDS):
        out_of_fold[folds == k] = _predict(
            x[folds == k], _fit(x[folds != k], y[folds != k], best_l2)
        )
    print(f"{'threshold':>9} {'cv move right':>14} {'cv stay right':>14} {'balanced':>9}")
    best_t, best_bal = 0.5, -1.0
    for t in THRESHOLDS:
        moved = out_of_fold >= t
        move_ok, stay_ok = float(moved[y == 1].mean()), float((~moved)[y == 0].mean())
        print(f"{t:9.2f} {move_ok:14.3f} {stay_ok:14.3f} {(move_ok + stay_ok) / 2:9.3f}")
        if (move_ok + stay_ok) / 2 > best_bal + 1e-9:
            best_t, best_bal = t, (move_ok + stay_ok) / 2
    w = _fit(x, y, best_l2)
    weights = dict(zip(FEATURES, map(float, w[1:]), strict=True))
    model = TurnModel(weights=weights, bias=float(w[0]), threshold=best_t)
    for name in FEATURES:
        print(f"  {name:16} {model.weights[name]:+.3f}")
    print(f"  {'bias':16} {model.bias:+.3f}")
    rounded = {k: round(v, 4) for k, v in model.weights.items()}
    data = {**model.to_json(), "weights": rounded, "bias": round(model.bias, 4),
            "fitted_on": sorted(splits), "l2": best_l2, "cv_accuracy": round(best_acc, 4),
            "cv_balanced_accuracy": round(best_bal, 4)}  # fmt: skip
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    print(json.dumps({"chats": len(chats), "labelled": len(y), "l2": best_l2,
                      "cv_accuracy": round(best_acc, 4), "threshold": best_t,
                      "cv_balanced_accuracy": round(best_bal, 4)}))  # fmt: skip
    return 0


def _labelled(chats: list[dict[str, object]], encoder_name: str) -> tuple[Array, Array]:
    encoder = load_encoder(encoder_name)
    rows: list[list[float]] = []
    labels: list[float] = []
    with tempfile.TemporaryDirectory(prefix="fit-turn-") as tmp:
        build_index(REPO / "routes", Path(tmp), encoder)
        settings = Settings(routes_dir=REPO / "routes", index_dir=Path(tmp), models_file=None)
        service = RouterService.from_settings(settings, encoder)
        matcher = service.matcher
        for chat in chats:
            messages = chat["messages"]
            assert isinstance(messages, list)
            turns = [(m["role"], m["content"]) for m in messages]
            plan = conversation.plan_turns(turns, clean=lambda t: service.clean_query(t)[0])
            if not plan.context or plan.topic_change:
                continue
            vectors, _ = encoder.encode_queries(plan.texts(), batch_size=16)
            vectors = np.asarray(vectors, dtype=np.float32)
            r = conversation.read(plan, vectors, matcher.decide(vectors), matcher)
            stay, move, right = r.context.route, r.moved.route, chat["route"]
            if stay is None or r.agrees or stay == move or right not in (stay, move):
                continue
            features = r.evidence.features()
            rows.append([features[name] for name in FEATURES])
            labels.append(float(right == move))
    return np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.float64)


def _fit(x: Array, y: Array, l2: float, steps: int = 30) -> Array:
    """L2-penalised logistic regression by Newton steps; the bias is not penalised."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-6)
        w = w - np.linalg.solve(hess, grad)
    return w


def _predict(x: Array, w: Array) -> Array:
    out: Array = 1.0 / (1.0 + np.exp(-np.clip(w[0] + x @ w[1:], -30, 30)))
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=Path, default=CHATS)
    parser.add_argument("--splits", default="train,dev", help="comma-separated splits to fit on")
    parser.add_argument("--encoder", default="hybrid")
    parser.add_argument("--out", type=Path, default=OUT)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
