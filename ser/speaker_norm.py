"""Feature standardisation fitted on training rows only, stored with the model artefact."""
from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np

from ser.params import SpeakerNormParams


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


@dataclass
class RunningStats:
    """Per-feature mean and variance accumulated clip by clip (Chan et al.'s pairwise update).

    A group's statistics for a live stream or an API client, in constant memory; `standardizer()`
    equals `Standardizer().fit` on all the clips seen (population std, as there).
    """

    clips: int = 0
    rows: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    def update(self, x: np.ndarray) -> RunningStats:
        """Add raw feature rows (k, d) or log-mel clips (k, frames, mels)."""
        flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
        n_b = len(flat)
        if not n_b:
            return self
        mean_b = flat.mean(axis=0)
        m2_b = ((flat - mean_b) ** 2).sum(axis=0)
        if self.rows == 0:
            self.mean, self.m2 = mean_b, m2_b
        else:
            n = self.rows + n_b
            delta = mean_b - self.mean
            self.mean = self.mean + delta * (n_b / n)
            self.m2 = self.m2 + m2_b + delta ** 2 * (self.rows * n_b / n)
        self.rows += n_b
        self.clips += int(x.shape[0])
        return self

    def standardizer(self) -> Standardizer:
        if not self.rows:
            raise RuntimeError("RunningStats has seen no clip")
        std = np.sqrt(self.m2 / self.rows)
        return Standardizer(mean=self.mean.copy(), scale=np.where(std > 1e-8, std, 1.0))


SPEAKER_NORM_MODES: tuple[str, ...] = get_args(SpeakerNormParams.model_fields["mode"].annotation)


@dataclass
class GroupNormalizer:
    """Standardise features per group (a speaker, a session, a folder) before a global scaler.

    Much of the variance in hand-crafted features is the voice, not the emotion; z-scoring each
    speaker's clips by that speaker's own statistics removes it. A group with fewer than
    `min_group_size` clips falls back to the training data's global statistics. Only `fallback`
    and `post` are fitted (on training rows) and stored; a group's own statistics come from the
    clips being normalised, so no label is ever used and no test clip touches the fitted state.
    """

    mode: str = "none"  # a bare normaliser does nothing; ser.train.normalizer passes `normalize.mode`
    min_group_size: int = SpeakerNormParams().min_group_size
    fallback: Standardizer | None = None  # global statistics of the raw training rows
    post: Standardizer | None = None      # global scaler fitted after per-group normalisation

    def __post_init__(self) -> None:
        if self.mode not in SPEAKER_NORM_MODES:
            raise ValueError(f"normalize.mode must be one of {SPEAKER_NORM_MODES}, got {self.mode!r}")
        if self.min_group_size < 2:
            raise ValueError(f"normalize.min_group_size must be at least 2, got {self.min_group_size}")

    def _per_group(self, x: np.ndarray, groups: np.ndarray | None, stats_rows: np.ndarray | None) -> np.ndarray:
        assert self.fallback is not None
        if self.mode == "none" or groups is None:
            return self.fallback.transform(x)
        groups = np.asarray(groups)
        stats_rows = np.ones(len(x), bool) if stats_rows is None else np.asarray(stats_rows, bool)
        out = np.empty(x.shape, np.float32)
        for group in np.unique(groups):
            rows = groups == group
            basis = rows & stats_rows
            if basis.sum() >= self.min_group_size:
                out[rows] = Standardizer().fit(x[basis]).transform(x[rows])
            else:
                out[rows] = self.fallback.transform(x[rows])
        return out

    def fit(self, x: np.ndarray, groups: np.ndarray | None = None, stats_rows: np.ndarray | None = None) -> GroupNormalizer:
        """Fit on training rows; `stats_rows` marks the rows a group's statistics come from (originals, not augmented copies)."""
        self.fallback = Standardizer().fit(x)
        self.post = Standardizer().fit(self._per_group(x, groups, stats_rows))
        return self

    def transform(self, x: np.ndarray, groups: np.ndarray | None = None, stats_rows: np.ndarray | None = None) -> np.ndarray:
        if self.post is None:
            raise RuntimeError("GroupNormalizer used before fit")
        return self.post.transform(self._per_group(x, groups, stats_rows))

    def uses_groups(self, clips: int) -> bool:
        """Whether a group of `clips` clips is normalised by its own statistics (else the global ones)."""
        return self.mode != "none" and clips >= self.min_group_size

    def transform_with(self, x: np.ndarray, stats: RunningStats | None) -> np.ndarray:
        """Transform clips of one group by that group's accumulated statistics (a stream, an API client);
        global statistics when `stats` is None or holds fewer than `min_group_size` clips."""
        if self.post is None:
            raise RuntimeError("GroupNormalizer used before fit")
        if stats is None or not self.uses_groups(stats.clips):
            return self.post.transform(self.fallback.transform(x))
        return self.post.transform(stats.standardizer().transform(x))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"fallback_mean": self.fallback.mean, "fallback_scale": self.fallback.scale,
                "post_mean": self.post.mean, "post_scale": self.post.scale}

    def config(self) -> dict[str, object]:
        return {"mode": self.mode, "min_group_size": self.min_group_size}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], config: dict[str, object]) -> GroupNormalizer:
        return cls(mode=str(config["mode"]), min_group_size=int(config["min_group_size"]),
                   fallback=Standardizer(arrays["fallback_mean"], arrays["fallback_scale"]),
                   post=Standardizer(arrays["post_mean"], arrays["post_scale"]))
