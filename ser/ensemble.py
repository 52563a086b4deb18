"""Soft voting over member models that may take different inputs, and how to choose the members.

A member is a model spec from params.yaml (`{"kind": "svc", "C": 10}`) with a weight and the name of
the input it reads: by default its kind's own (`pooled` or `logmel`), or any other key the caller
provides (`fusion` for pooled + eGeMAPS, say). `SoftVoting.predict_proba` takes a dict of inputs,
each already normalised the way that input's scaler was fitted (as with every `SerModel`, scaling
is not the model's job), and returns the weighted mean of the members' (n, 7) probabilities.

Members are chosen by `choose_members`: greedy forward selection by the UAR of the averaged
probabilities on VALIDATION speakers. The caller hands it validation probabilities only; the test
speakers never take part. `Stacker` (a logistic regression over the members' validation
probabilities) is the optional alternative to plain averaging.

The structure is plain data (`to_dict`/`from_dict`), so an artefact can store the recipe and each
member's fitted model (via the member models' own `save`) next to it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ser.models.base import N_CLASSES, SerModel

KIND = "soft_voting"


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
# soft voting


@dataclass
class Member:
    """One model of an ensemble: its params block, its weight and the input key it reads."""

    name: str
    spec: dict[str, Any]
    weight: float = 1.0
    input: str | None = None                       # default: the kind's own input (pooled | logmel)
    model: SerModel | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ser.models import model_input, split_spec

        split_spec(self.spec)  # checks kind and hyper-parameter names
        self.spec = dict(self.spec)
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"member {self.name!r}: weight must be a positive number, got {self.weight!r}")
        self.weight = float(self.weight)
        if self.input is None:
            self.input = model_input(self.spec["kind"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "spec": dict(self.spec), "weight": self.weight, "input": self.input}


MemberLike = Member | tuple | Mapping


def _member(item: MemberLike, index: int) -> Member:
    if isinstance(item, Member):
        return item
    if isinstance(item, Mapping):
        if "spec" in item:
            return Member(name=str(item.get("name", f"m{index}")), spec=dict(item["spec"]),
                          weight=item.get("weight", 1.0), input=item.get("input"))
        return Member(name=f"{item['kind']}{index}", spec=dict(item))  # a bare spec
    if isinstance(item, tuple):
        if len(item) == 2 and isinstance(item[0], Mapping):          # (spec, weight)
            spec, weight = item
            return Member(name=f"{spec['kind']}{index}", spec=dict(spec), weight=weight)
        if len(item) in (3, 4) and isinstance(item[0], str):         # (name, spec, weight[, input])
            return Member(item[0], dict(item[1]), item[2], item[3] if len(item) == 4 else None)
    raise TypeError(f"a member is a Member, (spec, weight), (name, spec, weight[, input]) or a spec; got {item!r}")


class SoftVoting:
    """Weighted mean of member models' probabilities; members may read different inputs.

    `SoftVoting([({"kind": "svc", "C": 10}, 1.0), ({"kind": "cnn1d"}, 0.5)])` reads `inputs["pooled"]`
    and `inputs["logmel"]`. Every input array has one row per clip, in the same order.
    """

    kind = KIND

    def __init__(self, members: Sequence[MemberLike], seed: int = 42, training: dict[str, Any] | None = None):
        self.members = [_member(m, i) for i, m in enumerate(members)]
        if not self.members:
            raise ValueError("a soft-voting ensemble needs at least one member")
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names must be unique, got {names}")
        self.seed = seed
        self.training = dict(training or {})

    @property
    def inputs(self) -> list[str]:
        """The input keys the members read, sorted."""
        return sorted({str(m.input) for m in self.members})

    @property
    def fitted(self) -> bool:
        return all(m.model is not None for m in self.members)

    def _check_inputs(self, inputs: Mapping[str, np.ndarray]) -> int:
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise KeyError(f"the ensemble needs input(s) {missing}; got {sorted(inputs)}")
        lengths = {k: len(inputs[k]) for k in self.inputs}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"inputs must have one row per clip each, got lengths {lengths}")
        return next(iter(lengths.values()))

    def fit_members(self, inputs: Mapping[str, np.ndarray], y: np.ndarray,
                    val_inputs: Mapping[str, np.ndarray] | None = None, y_val: np.ndarray | None = None,
                    sample_weight: np.ndarray | None = None) -> dict[str, dict[str, list[float]]]:
        """Fit every member on its input (validation data only for Keras early stopping); per-member histories."""
        from ser.models import build_model

        self._check_inputs(inputs)
        histories = {}
        for m in self.members:
            m.model = build_model(m.spec, seed=self.seed, training=self.training)
            x_val = val_inputs.get(m.input) if val_inputs is not None else None
            histories[m.name] = m.model.fit(inputs[m.input], y, x_val, y_val if x_val is not None else None,
                                            sample_weight=sample_weight)
        return histories

    fit = fit_members

    def member_probas(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each member's (n, 7) probabilities."""
        if not self.fitted:
            raise RuntimeError("SoftVoting used before fit_members")
        self._check_inputs(inputs)
        return {m.name: np.asarray(m.model.predict_proba(inputs[m.input]), dtype=np.float64) for m in self.members}

    def predict_proba(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Weighted mean of the members' probabilities, (n, 7) in EMOTIONS order."""
        probas = self.member_probas(inputs)
        return average_probas([probas[m.name] for m in self.members], [m.weight for m in self.members])

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.predict_proba(inputs).argmax(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """The recipe (JSON-able): kind, seed and each member's name, spec, weight and input."""
        return {"kind": KIND, "seed": self.seed, "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], training: dict[str, Any] | None = None) -> SoftVoting:
        """An unfitted ensemble from `to_dict`'s output (attach fitted models to `members[i].model`)."""
        if data.get("kind", KIND) != KIND:
            raise ValueError(f"not a {KIND} recipe: kind {data.get('kind')!r}")
        return cls([Member(**m) for m in data["members"]], seed=int(data.get("seed", 42)), training=training)

    @classmethod
    def from_fitted(cls, fitted: Sequence[tuple[Member, SerModel]]) -> SoftVoting:
        """An ensemble over members whose models were fitted elsewhere (e.g. during member selection)."""
        members = []
        for member, model in fitted:
            member.model = model
            members.append(member)
        return cls(members)

    def __repr__(self) -> str:
        parts = [f"{m.name}:{m.spec['kind']}@{m.input}x{m.weight:g}" for m in self.members]
        return f"SoftVoting({', '.join(parts)})"


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


__all__ = ["KIND", "Member", "SoftVoting", "Stacker", "average_probas", "choose_members", "uar"]
