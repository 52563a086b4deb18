"""openSMILE functionals (eGeMAPS v02 by default, or ComParE 2016) for one mono signal.

eGeMAPS is the 88-value "extended Geneva Minimalistic Acoustic Parameter Set" (Eyben et al., 2016):
pitch, jitter/shimmer, formants, loudness, spectral slope and their statistics, designed for
affect. Concatenated with the pooled spectral features it is the `fusion` input measured by
bench/accuracy.py.

`opensmile` is imported on first use, and one `Smile` per feature set is built once per process and
reused (its construction parses the config, ~0.2 s). The package's own `process_signal` still builds,
initialises and frees a native openSMILE instance on every call (~6 ms of a ~45 ms clip, plus its
pandas wrapping), so extraction runs instead through one `_Engine` per (feature set, sample rate)
and process: initialised once, then fed a clip, run, and reset (openSMILE's documented way to run
again without initialising); its values equal `process_signal`'s (tests/test_egemaps.py). A forked
child starts with no engines of its own. Calls are serialised by a lock: neither object is
documented as safe to share between threads.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016")
PREFIX = "egemaps_"

_SMILES: dict[str, Any] = {}
_ENGINES: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def _forget_engines() -> None:
    """In a forked child: the parent's native instances are not ours to run or free; build anew."""
    global _LOCK
    _ENGINES.clear()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_engines)


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


class _Engine:
    """One initialised native openSMILE instance for (feature set, sample rate): run once per clip, then reset.

    Built with the `Smile`'s own options (sink level, buffer configs, 16-bit external audio source),
    as `Smile.process_signal` builds one per call; the sink callback is one ctypes object kept for
    the engine's life (openSMILE wants it registered again after each reset).
    """

    def __init__(self, smile: Any, sr: int) -> None:
        from opensmile.core.config import config
        from opensmile.core.lib import ExternalSinkCallbackEx, smileapi

        options = smile._options()
        options.update(source=os.path.join(smile.default_config_root, config.EXTERNAL_INPUT_CONFIG),
                       sampleRate=int(sr), nBits=16)
        self._source = config.EXTERNAL_SOURCE_COMPONENT
        self._sink = config.EXTERNAL_OUTPUT_COMPONENT.encode("ascii")
        self._set_callback = smileapi.smile_extsink_set_data_callback_ex
        self._rows: list[np.ndarray] = []
        self._callback = ExternalSinkCallbackEx(self._collect)
        self._api = smile._smile(options)
        self.pid = os.getpid()

    def _collect(self, data: Any, n_frames: int, n_values: int, meta: Any, _param: Any) -> int:
        self._rows.append(np.ctypeslib.as_array(data, shape=(n_frames, n_values)).copy())
        return 1

    def run(self, signal: np.ndarray) -> np.ndarray | None:
        """Functionals of one float signal in [-1, 1] (quantised to 16 bits as `process_signal` does); None
        when the clip is shorter than one analysis segment."""
        api = self._api
        pcm = (signal * np.float32(32768)).astype(np.int16)
        self._rows.clear()
        api._check_smile_result(self._set_callback(api._smileobj, self._sink, self._callback, None))
        if api.external_audio_source_write_data(self._source, pcm.tobytes()) is False:
            raise RuntimeError("openSMILE refused the clip's samples (its input buffer is full)")
        api.external_audio_source_set_eoi(self._source)
        api.run()
        api.reset()
        return np.vstack(self._rows) if self._rows else None

    def free(self) -> None:
        self._api.free()


def _engine(feature_set: str, sr: int) -> Any:
    """The process's engine for (feature set, sample rate), or None when this opensmile's internals differ."""
    key = (feature_set, int(sr))
    engine = _ENGINES.get(key)
    if engine is None:
        smile = _smile(feature_set)
        try:
            engine = _Engine(smile, sr)
        except (ImportError, AttributeError, TypeError):  # another opensmile layout: its public path below
            engine = False
        _ENGINES[key] = engine
    return engine or None


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
        n = len(smile.feature_names)
        engine = _engine(feature_set, sr)
        if engine is None:
            with warnings.catch_warnings():  # "Segment too short, filling with NaN": handled below
                warnings.filterwarnings("ignore", message="Segment too short")
                frame = smile.process_signal(np.ascontiguousarray(signal), int(sr))
            values = frame.to_numpy(dtype=np.float64).reshape(-1)
        else:
            try:
                rows = engine.run(signal)
            except BaseException:  # state unknown after a failed run: never reuse it
                _ENGINES.pop((feature_set, int(sr)), None)
                engine.free()
                raise
            values = np.full(n, np.nan) if rows is None else rows.astype(np.float64).reshape(-1)
    if values.size != n:  # pragma: no cover - openSMILE always returns one row of functionals
        raise RuntimeError(f"openSMILE returned {values.size} values, expected {n}")
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


__all__ = ["FEATURE_SETS", "PREFIX", "egemaps_names", "extract_egemaps", "preload_library"]
