"""Soft voting over member models' probabilities, and how to choose the members.

`average_probas` is the weighted mean of members' (n, 7) probabilities (each member may read its
own input: pooled, log-mel, pooled + eGeMAPS; the caller predicts with each and averages).
Members are chosen by `choose_members`: greedy forward selection by the UAR of the averaged
probabilities on VALIDATION speakers. The caller hands it validation probabilities only; the test
speakers never take part. `Stacker` (a logistic regression over the members' validation
probabilities) is the optional alternative to plain averaging. `bench/accuracy.py` uses all three.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ser.models.base import N_CLASSES


# --------------------------------------------------------------------------------------------------
# scoring


def uar(y_true: np.ndarray, proba: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Unweighted average recall of argmax(proba) over the classes present in y_true (sklearn's
    balanced accuracy); with `groups`, the mean of the per-group UARs (e.g. per validation speaker)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(proba).argmax(axis=1)
    if groups is not None:
        groups = np.asarray(groups)
        return float(np.mean([uar(y_true[groups == g], proba[groups == g]) for g in np.unique(groups)]))
    if not len(y_true):
        raise ValueError("uar of an empty set")
    recalls = [float(np.mean(pred[y_true == c] == c)) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def average_probas(probas: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of (n, 7) probability arrays (weights need not sum to 1)."""
    if not len(probas):
        raise ValueError("nothing to average")
    arrays = [np.asarray(p, dtype=np.float64) for p in probas]
    shape = arrays[0].shape
    if len(shape) != 2 or shape[1] != N_CLASSES or any(a.shape != shape for a in arrays):
        raise ValueError(f"probabilities must all be (n, {N_CLASSES}), got {[a.shape for a in arrays]}")
    w = np.ones(len(arrays)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(arrays),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be {len(arrays)} finite non-negative numbers with a positive sum, got {weights}")
    return np.tensordot(w / w.sum(), np.stack(arrays), axes=1)


def choose_members(val_probas: Mapping[str, np.ndarray], y_val: np.ndarray, k: int,
                   groups: np.ndarray | None = None) -> list[str]:
    """Up to `k` member names, greedily: start from the best single member by validation UAR, then
    keep adding the member whose inclusion most raises the UAR of the (equal-weight) average, and
    stop at `k` or when no addition raises it. Ties go to the earlier name in `val_probas`.

    `val_probas` must hold probabilities on VALIDATION rows only (speakers neither trained on nor
    tested on); `groups` (e.g. the validation speakers) makes the score the mean per-group UAR.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not val_probas:
        raise ValueError("no candidate members")
    y_val = np.asarray(y_val)
    names = list(val_probas)
    for name in names:
        if np.asarray(val_probas[name]).shape != (len(y_val), N_CLASSES):
            raise ValueError(f"{name}: validation probabilities must be ({len(y_val)}, {N_CLASSES}), "
                             f"got {np.asarray(val_probas[name]).shape}")
    chosen: list[str] = []
    best = -math.inf
    total = np.zeros((len(y_val), N_CLASSES))
    while len(chosen) < min(k, len(names)):
        scores = {n: uar(y_val, (total + val_probas[n]) / (len(chosen) + 1), groups) for n in names if n not in chosen}
        name = max(scores, key=lambda n: (scores[n], -names.index(n)))
        if chosen and scores[name] <= best:
            break
        chosen.append(name)
        best = scores[name]
        total = total + val_probas[name]
    return chosen


# --------------------------------------------------------------------------------------------------
# stacking (optional)


class Stacker:
    """Multinomial logistic regression over members' probabilities (log-probabilities as features).

    Fit it on VALIDATION probabilities (members trained without those speakers); it has
    7 x members inputs, so it needs far more validation clips than plain averaging to pay off.
    """

    def __init__(self, C: float = 1.0, seed: int = 42):
        self.C = float(C)
        self.seed = seed
        self.names: list[str] | None = None
        self.estimator: Any = None

    def _features(self, probas: Mapping[str, np.ndarray]) -> np.ndarray:
        assert self.names is not None
        return np.hstack([np.log(np.clip(np.asarray(probas[n], dtype=np.float64), 1e-6, 1.0)) for n in self.names])

    def fit(self, val_probas: Mapping[str, np.ndarray], y_val: np.ndarray,
            sample_weight: np.ndarray | None = None) -> Stacker:
        from sklearn.linear_model import LogisticRegression

        self.names = list(val_probas)
        self.estimator = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.estimator.fit(self._features(val_probas), np.asarray(y_val), sample_weight=sample_weight)
        return self

    def predict_proba(self, probas: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.estimator is None:
            raise RuntimeError("Stacker used before fit")
        part = self.estimator.predict_proba(self._features(probas))
        out = np.zeros((len(part), N_CLASSES))
        out[:, self.estimator.classes_.astype(int)] = part
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "stacking", "C": self.C, "members": list(self.names or [])}


__all__ = ["Stacker", "average_probas", "choose_members", "uar"]
