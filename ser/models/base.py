"""The one interface every model implements, so training, evaluation and prediction treat them alike.

Labels are integer indices into `ser.EMOTIONS` (0..6); `predict_proba` always returns seven columns
in that order, with 0 for a class the model never saw in training.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ser import EMOTIONS

N_CLASSES = len(EMOTIONS)


class SerModel(ABC):
    """A classifier over one input kind: `pooled` (n, d) vectors or `logmel` (n, frames, mels) sequences."""

    kind: ClassVar[str]                          # registry key, e.g. "random_forest", "cnn_lstm"
    input: ClassVar[Literal["pooled", "logmel"]]
    framework: ClassVar[Literal["sklearn", "keras"]]

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 42, training: dict[str, Any] | None = None):
        self.params = dict(params or {})       # the model's own block from params.yaml (minus `kind`)
        self.training = dict(training or {})   # shared training knobs (epochs, patience, optimizer, ...)
        self.seed = seed

    @classmethod
    @abstractmethod
    def accepted_params(cls) -> set[str]:
        """Every key the model's params block may carry."""

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Refuse a params block naming a hyper-parameter this kind does not take."""
        unknown = sorted(set(params) - cls.accepted_params())
        if unknown:
            raise ValueError(
                f"unknown hyper-parameter(s) {unknown} for model kind {cls.kind!r}; "
                f"accepted: {sorted(cls.accepted_params())}")

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            sample_weight: np.ndarray | None = None) -> dict[str, list[float]]:
        """Train; return per-epoch history (loss, val_loss, accuracy, val_accuracy, lr) or {} for sklearn."""

    @abstractmethod
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 7) probabilities in EMOTIONS order."""

    @abstractmethod
    def save(self, folder: Path) -> list[Path]:
        """Write the fitted model into `folder`; return the files written."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, params: dict[str, Any] | None = None) -> SerModel:
        """Read a model written by `save`."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def stopping(self) -> dict[str, Any]:
        """How training by epochs ended (`epochs_run`, `stop_reason`) after fit; {} for a model trained to
        convergence, whose metrics then carry neither key."""
        return {}
