"""Feature standardisation fitted on training rows only, stored with the model artefact."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Standardizer:
    """Per-feature mean/std for pooled (n, d) input, per-mel-band for log-mel (n, frames, mels) input."""

    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> Standardizer:
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        self.mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        self.scale = np.where(std > 1e-8, std, 1.0)  # a constant feature passes through centred
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError("Standardizer used before fit")
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"expected {self.mean.shape[0]} features in the last axis, got {x.shape[-1]}")
        return ((x - self.mean) / self.scale).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Standardizer:
        return cls(mean=np.asarray(arrays["mean"]), scale=np.asarray(arrays["scale"]))
