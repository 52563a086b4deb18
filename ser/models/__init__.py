"""Model registry: `kind` -> `SerModel` class, imported on first use.

Importing this package imports neither scikit-learn nor TensorFlow: `MODELS` is a lazy mapping whose
values are imported when looked up, so a run that trains only a random forest never pays for
TensorFlow (~6 s). `model_input(kind)` / `model_framework(kind)` answer without importing anything.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ser.models.base import N_CLASSES, SerModel


class _Entry(NamedTuple):
    target: str      # "module:Class"
    input: str       # "pooled" | "logmel"
    framework: str   # "sklearn" | "keras"


_CLASSICAL = "ser.models.classical"
_KERAS = "ser.models.keras_models"

_ENTRIES: dict[str, _Entry] = {
    "random_forest": _Entry(f"{_CLASSICAL}:RandomForestModel", "pooled", "sklearn"),
    "svc": _Entry(f"{_CLASSICAL}:SVCModel", "pooled", "sklearn"),
    "gradient_boosting": _Entry(f"{_CLASSICAL}:GradientBoostingModel", "pooled", "sklearn"),
    "knn": _Entry(f"{_CLASSICAL}:KNNModel", "pooled", "sklearn"),
    "mlp": _Entry(f"{_CLASSICAL}:MLPModel", "pooled", "sklearn"),
    "bagging": _Entry(f"{_CLASSICAL}:BaggingModel", "pooled", "sklearn"),
    "adaboost": _Entry(f"{_CLASSICAL}:AdaBoostModel", "pooled", "sklearn"),
    "decision_tree": _Entry(f"{_CLASSICAL}:DecisionTreeModel", "pooled", "sklearn"),
    "logistic": _Entry(f"{_CLASSICAL}:LogisticModel", "pooled", "sklearn"),
    "keras_mlp": _Entry(f"{_KERAS}:KerasMLP", "pooled", "keras"),
    "cnn1d": _Entry(f"{_KERAS}:CNN1D", "logmel", "keras"),
    "cnn2d": _Entry(f"{_KERAS}:CNN2D", "logmel", "keras"),
    "cnn_lstm": _Entry(f"{_KERAS}:CNNLSTM", "logmel", "keras"),
    "dual_cnn_lstm": _Entry(f"{_KERAS}:DualCNNLSTM", "logmel", "keras"),
    "cnn_attention": _Entry(f"{_KERAS}:CNNAttention", "logmel", "keras"),
}


def _unknown_kind(kind: object) -> ValueError:
    return ValueError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(_ENTRIES))}")


class _LazyRegistry(Mapping[str, type[SerModel]]):
    """`kind -> class`; a class's module is imported the first time that kind is looked up."""

    def __init__(self, entries: dict[str, _Entry]):
        self._entries = entries
        self._loaded: dict[str, type[SerModel]] = {}

    def __getitem__(self, kind: str) -> type[SerModel]:
        if kind not in self._entries:
            raise KeyError(kind)
        if kind not in self._loaded:
            module, _, name = self._entries[kind].target.partition(":")
            cls = getattr(importlib.import_module(module), name)
            if cls.kind != kind:  # pragma: no cover - registry typo
                raise RuntimeError(f"registry maps {kind!r} to {cls.__name__} of kind {cls.kind!r}")
            self._loaded[kind] = cls
        return self._loaded[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, kind: object) -> bool:
        return kind in self._entries

    def __repr__(self) -> str:
        return f"MODELS({sorted(self._entries)})"


MODELS: Mapping[str, type[SerModel]] = _LazyRegistry(_ENTRIES)


def model_class(kind: str) -> type[SerModel]:
    if kind not in _ENTRIES:
        raise _unknown_kind(kind)
    return MODELS[kind]


def model_input(kind: str) -> str:
    """The input a kind takes (`pooled` or `logmel`), without importing its framework."""
    if kind not in _ENTRIES:
        raise _unknown_kind(kind)
    return _ENTRIES[kind].input


def model_framework(kind: str) -> str:
    """The framework of a kind (`sklearn` or `keras`), without importing it."""
    if kind not in _ENTRIES:
        raise _unknown_kind(kind)
    return _ENTRIES[kind].framework


def split_spec(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`{"kind": "svc", "C": 10}` -> `("svc", {"C": 10})`, checking kind and hyper-parameter names."""
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise ValueError(f"a model spec needs a `kind` (one of {', '.join(sorted(_ENTRIES))}); got {spec!r}")
    params = dict(spec)
    kind = params.pop("kind")
    cls = model_class(kind)
    accepted = cls.accepted_params()  # type: ignore[attr-defined]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"unknown hyper-parameter(s) {', '.join(map(repr, unknown))} for model kind {kind!r}; "
                         f"accepted: {', '.join(sorted(accepted))}")
    return kind, params


def build_model(spec: dict[str, Any], seed: int = 42, training: dict[str, Any] | None = None) -> SerModel:
    """A fresh, unfitted model from a params block such as `{"kind": "svc", "C": 10}`."""
    kind, params = split_spec(spec)
    return MODELS[kind](params, seed=seed, training=training)


def default_params(kind: str) -> dict[str, Any]:
    """The defaults a kind uses for keys its params block leaves out."""
    return model_class(kind).default_params()  # type: ignore[attr-defined]


def load_model(kind: str, folder: Path | str, params: dict[str, Any] | None = None) -> SerModel:
    """Read a model that `save` wrote into `folder` (`params` may be the block with or without `kind`)."""
    if params is not None:
        params = {k: v for k, v in params.items() if k != "kind"}
    return model_class(kind).load(Path(folder), params)


__all__ = ["MODELS", "N_CLASSES", "SerModel", "build_model", "default_params", "load_model", "model_class",
           "model_framework", "model_input", "split_spec"]
