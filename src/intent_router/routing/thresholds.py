"""Fitting the acceptance threshold on labelled rows, under an objective the user chooses.

The threshold trades routed requests against refused ones; which side matters more is the
user's call, so ``intent-router fit --objective`` names it:

``macro-f1`` (default)
    maximise the macro-F1 over the routes plus "none" as one more class. Needs no target
    rate and no knowledge of the split; with many routes "none" weighs little (1 class in
    151 on CLINC150), so it favours routing: high in-scope accuracy, modest refusal.
``oos-recall:R``
    the highest in-scope accuracy whose out-of-scope recall (rows with ``route: null``
    refused) is at least ``R`` on the fit set. Refusing more costs in-scope accuracy; this
    says how much refusal is wanted. Needs out-of-scope rows.
``precision:P``
    the most in-scope requests routed right such that at least ``P`` of the routed
    requests go to their right route (an out-of-scope request that is routed counts as
    wrong). Refused requests fall to the default chain, so this bounds misrouting.

Rows the matcher refuses whatever the threshold (a none route or negatives won) stay
refused: ``refused`` marks them. Per-route thresholds (``per_route``) refine the global one
by each route's own F1 among the rows predicted to it; only with ``macro-f1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from intent_router.errors import ConfigError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

OBJECTIVES = ("macro-f1", "oos-recall:R", "precision:P")
_MAX_CANDIDATES = 1024


@dataclass(frozen=True)
class Objective:
    """What the fitted threshold maximises: ``kind`` is macro-f1, oos-recall or precision."""

    kind: str
    target: float | None = None

    @classmethod
    def parse(cls, text: str) -> Objective:
        name, _, value = text.strip().partition(":")
        if name == "macro-f1" and not value:
            return cls("macro-f1")
        if name in ("oos-recall", "precision") and value:
            try:
                target = float(value)
            except ValueError:
                target = -1.0
            if 0.0 < target <= 1.0:
                return cls(name, target)
            raise ConfigError(
                f"'{text}': the target of {name} must be a fraction in (0, 1], e.g. {name}:0.9",
                field="objective",
            )
        raise ConfigError(
            f"unknown objective '{text}' (one of: {', '.join(OBJECTIVES)})", field="objective"
        )

    def __str__(self) -> str:
        return self.kind if self.target is None else f"{self.kind}:{self.target:g}"


def fit_thresholds(
    scores_top: npt.ArrayLike,
    predicted: npt.ArrayLike,
    gold: npt.ArrayLike,
    *,
    n_routes: int | None = None,
    objective: Objective | None = None,
    refused: npt.ArrayLike | None = None,
    per_route: bool = False,
    min_rows_per_route: int = 20,
) -> tuple[float, FloatArray | None]:
    """Fit the acceptance threshold on labelled rows (``gold`` = route index, or -1 = none).

    ``scores_top`` and ``predicted`` are the top score and its route for each row;
    ``refused`` marks rows refused whatever the threshold. With ``per_route`` (macro-F1
    only), each route with at least ``min_rows_per_route`` rows predicted to it gets its
    own threshold (others keep the global one).
    """
    objective = objective or Objective("macro-f1")
    score = np.asarray(scores_top, dtype=np.float64)
    pred = np.asarray(predicted, dtype=np.int64)
    truth = np.asarray(gold, dtype=np.int64)
    if not (len(score) == len(pred) == len(truth)) or len(score) == 0:
        raise ConfigError("threshold fitting needs equal-length, non-empty score/label arrays")
    out = np.zeros(len(score), dtype=bool) if refused is None else np.asarray(refused, bool)
    if len(out) != len(score):
        raise ConfigError("threshold fitting needs one refused flag per row")
    if per_route and objective.kind != "macro-f1":
        raise ConfigError("per-route thresholds are fitted with the macro-f1 objective only")
    routes = int(max(pred.max(), truth.max()) + 1) if n_routes is None else n_routes
    candidates = _candidates(score[~out] if (~out).any() else score)
    final = np.where((score[None, :] >= candidates[:, None]) & ~out[None, :], pred[None, :], -1)
    global_threshold = float(candidates[_choose(objective, final, truth, routes)])
    if not per_route:
        return global_threshold, None
    thresholds = np.full(routes, global_threshold, dtype=np.float32)
    for route in range(routes):
        rows = (pred == route) & ~out
        if rows.sum() < min_rows_per_route:
            continue
        sub = _candidates(score[rows])
        gain = _route_gain(score[rows], truth[rows] == route, (truth == route).sum(), sub)
        thresholds[route] = sub[int(np.argmax(gain))]
    return global_threshold, thresholds


def _choose(objective: Objective, final: IntArray, truth: IntArray, n_routes: int) -> int:
    """The index of the best row of ``final`` (one prediction row per threshold)."""
    if objective.kind == "macro-f1":
        return int(np.argmax(_macro_f1(final, truth, n_routes)))
    in_scope = truth >= 0
    correct = final == truth[None, :]
    accuracy = correct[:, in_scope].mean(axis=1) if in_scope.any() else np.zeros(len(final))
    target = float(objective.target or 0.0)
    if objective.kind == "oos-recall":
        if in_scope.all():
            raise ConfigError(
                "objective oos-recall needs out-of-scope rows (route: null) in the data set",
                field="objective",
            )
        recall = (final[:, ~in_scope] < 0).mean(axis=1)
        feasible = recall >= target - 1e-12
        # Best accuracy among feasible thresholds; on ties, the higher recall.
        key = np.where(feasible, accuracy * 2 + recall * 1e-6, -np.inf)
        return int(np.argmax(key))
    routed = final >= 0
    accepted = routed.sum(axis=1)
    right = (correct & routed).sum(axis=1)
    precision = np.where(accepted > 0, right / np.maximum(accepted, 1), 1.0)
    feasible = (precision >= target - 1e-12) & (accepted > 0)
    if not feasible.any():
        raise ConfigError(
            f"no threshold reaches precision {target:g} on this data set "
            f"(best: {float(precision[accepted > 0].max(initial=0.0)):.3f})",
            field="objective",
        )
    return int(np.argmax(np.where(feasible, accuracy * 2 + precision * 1e-6, -np.inf)))


def _candidates(score: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mid-points between sorted distinct scores, plus one below all and one above all."""
    values = np.unique(score)
    mids = (values[:-1] + values[1:]) / 2
    if len(mids) > _MAX_CANDIDATES:  # bounds memory: thresholds x rows
        mids = np.unique(np.quantile(mids, np.linspace(0.0, 1.0, _MAX_CANDIDATES)))
    return np.concatenate([[values[0] - 1e-6], mids, [values[-1] + 1e-6]])


def _macro_f1(final: IntArray, truth: IntArray, n_routes: int) -> npt.NDArray[np.float64]:
    """Macro-F1 over ``n_routes`` + "none" for every row of ``final`` (one per threshold)."""
    final = np.where(final < 0, n_routes, final)  # "none" is class n_routes
    gold = np.where(truth < 0, n_routes, truth)
    classes = n_routes + 1
    offsets = (np.arange(len(final)) * classes)[:, None]
    size = len(final) * classes
    hit = final == gold[None, :]
    tp = np.bincount((final + offsets)[hit], minlength=size).reshape(-1, classes)
    predicted_n = np.bincount((final + offsets).ravel(), minlength=size).reshape(-1, classes)
    gold_n = np.bincount(gold, minlength=classes)[None, :]
    denominator = predicted_n + gold_n
    f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    present = (gold_n[0] > 0) | (predicted_n > 0)
    curve: npt.NDArray[np.float64] = (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    return curve


def _route_gain(
    score: npt.NDArray[np.float64],
    correct: npt.NDArray[np.bool_],
    n_gold: int,
    thresholds: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """F1 of one route among the rows predicted to it, for every threshold."""
    accepted = score[None, :] >= thresholds[:, None]
    tp = (accepted & correct[None, :]).sum(axis=1)
    denominator = accepted.sum(axis=1) + n_gold
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
