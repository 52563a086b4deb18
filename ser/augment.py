"""Training-split augmentation (audiomentations), reproducible per (seed, utterance, copy).

params.yaml shape (a transform is used only when its block is present and p > 0):

    augment:
      copies: 2                      # augmented copies per training utterance (0 = none; default 0)
      noise: {p: 0.5, min_snr_db: 10, max_snr_db: 30, colored: true}   # AddColorNoise, else AddGaussianSNR
      pitch_shift: {p: 0.5, min_semitones: -2, max_semitones: 2}
      time_stretch: {p: 0.5, min_rate: 0.9, max_rate: 1.1}             # leave_length_unchanged: false
      gain: {p: 0.0, min_db: -6, max_db: 6}
      shift: {p: 0.0, min_fraction: -0.1, max_fraction: 0.1}           # rollover: true
"""
from __future__ import annotations

import hashlib
import math
import random
import sys
import threading
from typing import Any, Mapping

import numpy as np
from audiomentations import (
    AddColorNoise,
    AddGaussianSNR,
    Compose,
    Gain,
    PitchShift,
    Shift,
    TimeStretch,
)

__all__ = ["TRANSFORMS", "augment_copy", "build_augmenter", "derive_seed", "n_copies", "validate_config"]

# Per transform: its keys with defaults (None = required), and the (min, max) pairs that must be ordered.
_SPECS: dict[str, tuple[dict[str, Any], tuple[tuple[str, str], ...]]] = {
    "time_stretch": ({"p": None, "min_rate": 0.9, "max_rate": 1.1, "leave_length_unchanged": False},
                     (("min_rate", "max_rate"),)),
    "pitch_shift": ({"p": None, "min_semitones": -2.0, "max_semitones": 2.0},
                    (("min_semitones", "max_semitones"),)),
    "shift": ({"p": None, "min_fraction": -0.1, "max_fraction": 0.1, "rollover": True},
              (("min_fraction", "max_fraction"),)),
    "gain": ({"p": None, "min_db": -6.0, "max_db": 6.0}, (("min_db", "max_db"),)),
    "noise": ({"p": None, "min_snr_db": 10.0, "max_snr_db": 30.0, "colored": True,
               "min_f_decay": -6.0, "max_f_decay": 6.0},
              (("min_snr_db", "max_snr_db"), ("min_f_decay", "max_f_decay"))),
}
# Application order: noise last, so its SNR is measured against the final (stretched, shifted, scaled) signal.
TRANSFORMS: tuple[str, ...] = tuple(_SPECS)
_BOOL_KEYS = {"leave_length_unchanged", "rollover", "colored"}

# audiomentations draws from the process-global `random`/`np.random` and keeps per-call state on the
# transform objects, so concurrent calls in one process are serialised to stay deterministic.
_LOCK = threading.Lock()


def _modules_drawing_from_global_random() -> list[Any]:
    """audiomentations' modules that call the global `random` (its transforms' parameter draws)."""
    return [m for name, m in list(sys.modules.items())
            if name.startswith("audiomentations") and getattr(m, "random", None) is random]


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def n_copies(cfg: Mapping[str, Any] | None) -> int:
    """How many augmented copies per training utterance (`copies`, default 0)."""
    value = (cfg or {}).get("copies", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"augment.copies must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"augment.copies must be a non-negative integer, got {value}")
    return value


def validate_config(cfg: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Check an `augment:` block; return the enabled transforms (p > 0) with defaults filled in.

    Raises ValueError naming the offending key (unknown key, p outside [0, 1], min > max, wrong type).
    """
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, Mapping):
        raise ValueError(f"augment must be a mapping, got {type(cfg).__name__}")
    n_copies(cfg)
    enabled: dict[str, dict[str, Any]] = {}
    for name, block in cfg.items():
        if name == "copies":
            continue
        if name not in _SPECS:
            raise ValueError(f"augment.{name}: unknown transform; known: copies, {', '.join(sorted(_SPECS))}")
        if block is None:
            continue
        if not isinstance(block, Mapping):
            raise ValueError(f"augment.{name} must be a mapping, got {block!r}")
        defaults, ranges = _SPECS[name]
        for key in block:
            if key not in defaults:
                raise ValueError(f"augment.{name}.{key}: unknown key; known: {', '.join(defaults)}")
        values = {**defaults, **block}
        for key, value in values.items():
            full = f"augment.{name}.{key}"
            if value is None:
                raise ValueError(f"{full} is required")
            if key in _BOOL_KEYS:
                if not isinstance(value, bool):
                    raise ValueError(f"{full} must be true or false, got {value!r}")
            else:
                values[key] = _number(value, full)
        if not 0.0 <= values["p"] <= 1.0:
            raise ValueError(f"augment.{name}.p must be in [0, 1], got {values['p']}")
        for lo, hi in ranges:
            if values[lo] > values[hi]:
                raise ValueError(f"augment.{name}.{lo} ({values[lo]}) must not exceed {hi} ({values[hi]})")
        if values["p"] > 0:
            enabled[name] = values
    return {name: enabled[name] for name in TRANSFORMS if name in enabled}


def _transform(name: str, v: dict[str, Any]):
    if name == "time_stretch":
        return TimeStretch(min_rate=v["min_rate"], max_rate=v["max_rate"],
                           leave_length_unchanged=v["leave_length_unchanged"], p=v["p"])
    if name == "pitch_shift":
        return PitchShift(min_semitones=v["min_semitones"], max_semitones=v["max_semitones"], p=v["p"])
    if name == "shift":
        return Shift(min_shift=v["min_fraction"], max_shift=v["max_fraction"], shift_unit="fraction",
                     rollover=v["rollover"], p=v["p"])
    if name == "gain":
        return Gain(min_gain_db=v["min_db"], max_gain_db=v["max_db"], p=v["p"])
    if v["colored"]:
        return AddColorNoise(min_snr_db=v["min_snr_db"], max_snr_db=v["max_snr_db"],
                             min_f_decay=v["min_f_decay"], max_f_decay=v["max_f_decay"], p=v["p"])
    return AddGaussianSNR(min_snr_db=v["min_snr_db"], max_snr_db=v["max_snr_db"], p=v["p"])


def build_augmenter(cfg: Mapping[str, Any] | None) -> Compose:
    """An audiomentations Compose of the enabled transforms, in a fixed order (empty when none is enabled)."""
    transforms = []
    for name, values in validate_config(cfg).items():
        try:
            transforms.append(_transform(name, values))
        except ValueError as exc:  # audiomentations' own range checks (e.g. |semitones| <= 24)
            raise ValueError(f"augment.{name}: {exc}") from exc
    return Compose(transforms, p=1.0, shuffle=False)


def derive_seed(seed: int, utt_id: str, copy: int) -> int:
    """A stable 32-bit seed for (seed, utt_id, copy): SHA-256 based, identical across runs and machines."""
    digest = hashlib.sha256(f"{int(seed)}\x1f{utt_id}\x1f{int(copy)}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


def augment_copy(
    audio: np.ndarray,
    sample_rate: int,
    augmenter: Compose,
    *,
    utt_id: str,
    copy: int,
    seed: int,
) -> np.ndarray:
    """Augmented copy number `copy` of one utterance, the same on every run for (seed, utt_id, copy).

    audiomentations' parameter draws come from a generator private to the call, its noise from
    `numpy.random` seeded for the call (previous state restored afterwards). Returns a new float32
    array; length may change only when time_stretch has leave_length_unchanged: false.
    """
    samples = np.ascontiguousarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"{utt_id}: expected mono 1-D audio, got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError(f"{utt_id}: input audio has non-finite samples")
    derived = derive_seed(seed, utt_id, copy)
    with _LOCK:
        # The parameter draws go to a private generator: other threads of the process (Dask's and
        # Prefect's timers jitter with the global `random`) would otherwise shift them between runs.
        users, private = _modules_drawing_from_global_random(), random.Random(derived)
        np_state = np.random.get_state()
        try:
            for module in users:
                module.random = private
            np.random.seed(derived)
            out = augmenter(samples=samples.copy(), sample_rate=int(sample_rate))
        finally:
            for module in users:
                module.random = random
            np.random.set_state(np_state)
    out = np.array(out, dtype=np.float32, copy=True)
    if not np.isfinite(out).all():
        raise ValueError(f"{utt_id}: augmentation copy {copy} produced non-finite samples")
    return out
