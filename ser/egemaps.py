"""openSMILE functionals (eGeMAPS v02 by default, or ComParE 2016) for one mono signal.

eGeMAPS is the 88-value "extended Geneva Minimalistic Acoustic Parameter Set" (Eyben et al., 2016):
pitch, jitter/shimmer, formants, loudness, spectral slope and their statistics, designed for
affect. Concatenated with the pooled spectral features it is the `fusion` input measured by
bench/accuracy.py.

`opensmile` is imported on first use, and one `Smile` per feature set is built once per process and
reused (its construction parses the config, ~0.2 s). Calls are serialised by a lock: a `Smile`
object is not documented as safe to share between threads.
"""
from __future__ import annotations

import ctypes
import importlib.util
import platform
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016")
PREFIX = "egemaps_"

_SMILES: dict[str, Any] = {}
_LOCK = threading.Lock()


def preload_library() -> bool:
    """Load openSMILE's native library now, if installed; call it before TensorFlow is imported.

    libSMILEapi loaded after TensorFlow corrupts the heap on its first extraction ("malloc():
    invalid size", SIGABRT); loaded first, both work. Loading the .so with ctypes costs ~1 ms,
    where `import opensmile` costs ~1.4 s. Returns whether a library was loaded.
    """
    spec = importlib.util.find_spec("opensmile")
    if spec is None or spec.origin is None:
        return False
    machine = platform.machine().lower()
    for lib in sorted((Path(spec.origin).parent / "core" / "bin").glob("*/*SMILEapi.*")):
        if lib.parent.name.endswith(machine):
            ctypes.CDLL(str(lib))
            return True
    return False


def _check_set(feature_set: str) -> str:
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown openSMILE feature set {feature_set!r}; supported: {', '.join(FEATURE_SETS)}")
    return feature_set


def _smile(feature_set: str) -> Any:
    """The process's `opensmile.Smile` for `feature_set` at the functionals level (built on first use)."""
    _check_set(feature_set)
    smile = _SMILES.get(feature_set)
    if smile is None:
        try:
            import opensmile
        except ImportError as exc:  # pragma: no cover - opensmile is a dependency of the venv
            raise ImportError("eGeMAPS features need the `opensmile` package (pip install opensmile)") from exc
        smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                                feature_level=opensmile.FeatureLevel.Functionals)
        _SMILES[feature_set] = smile
    return smile


def egemaps_names(feature_set: str = "eGeMAPSv02") -> list[str]:
    """Column names, in extraction order, each prefixed `egemaps_` (88 for eGeMAPSv02, 6,373 for ComParE_2016)."""
    with _LOCK:
        return [PREFIX + name for name in _smile(feature_set).feature_names]


def extract_egemaps(audio: np.ndarray, sr: int, feature_set: str = "eGeMAPSv02") -> np.ndarray:
    """One float32 vector of functionals for a mono float signal at `sr` Hz.

    Values openSMILE leaves undefined (NaN/inf, e.g. for a clip shorter than one analysis frame)
    become 0, so the vector is always finite.
    """
    signal = np.asarray(audio, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {signal.shape}")
    if not signal.size:
        raise ValueError("empty audio")
    if int(sr) <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    with _LOCK:
        smile = _smile(feature_set)
        with warnings.catch_warnings():  # "Segment too short, filling with NaN": handled below
            warnings.filterwarnings("ignore", message="Segment too short")
            frame = smile.process_signal(np.ascontiguousarray(signal), int(sr))
        values = frame.to_numpy(dtype=np.float64).reshape(-1)
        n = len(smile.feature_names)
    if values.size != n:  # pragma: no cover - openSMILE always returns one row of functionals
        raise RuntimeError(f"openSMILE returned {values.size} values, expected {n}")
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


__all__ = ["FEATURE_SETS", "PREFIX", "egemaps_names", "extract_egemaps", "preload_library"]
