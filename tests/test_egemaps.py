"""openSMILE functionals: names, finiteness on edge-case signals, the per-process Smile cache."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("opensmile")

from ser import egemaps  # noqa: E402
from ser.egemaps import egemaps_names, extract_egemaps  # noqa: E402

SR = 16000


def sine(seconds: float = 1.0, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_egemaps_names_are_88_prefixed_and_unique():
    names = egemaps_names()
    assert len(names) == 88
    assert len(set(names)) == 88
    assert all(n.startswith("egemaps_") for n in names)
    assert "egemaps_F0semitoneFrom27.5Hz_sma3nz_amean" in names


def test_sine_gives_finite_float32_vector_matching_names():
    vec = extract_egemaps(sine(), SR)
    assert vec.shape == (88,)
    assert vec.dtype == np.float32
    assert np.isfinite(vec).all()
    # a 220 Hz tone: the F0 mean (semitones above 27.5 Hz) is 12 * log2(220 / 27.5) = 36
    f0 = vec[egemaps_names().index("egemaps_F0semitoneFrom27.5Hz_sma3nz_amean")]
    assert f0 == pytest.approx(36.0, abs=1.0)


@pytest.mark.parametrize("seconds", [1.0, 0.02])
def test_silence_and_very_short_clips_are_finite(seconds):
    vec = extract_egemaps(np.zeros(int(seconds * SR), np.float32), SR)
    assert vec.shape == (88,)
    assert np.isfinite(vec).all()


def test_deterministic_and_other_rates():
    a, b = extract_egemaps(sine(), SR), extract_egemaps(sine(), SR)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(extract_egemaps(sine(0.5)[: SR // 4], 8000)).all()


def test_compare_2016_names_and_values():
    names = egemaps_names("ComParE_2016")
    assert len(names) == 6373 and all(n.startswith("egemaps_") for n in names)
    vec = extract_egemaps(sine(0.5), SR, "ComParE_2016")
    assert vec.shape == (6373,) and np.isfinite(vec).all()


def test_smile_is_built_once_per_feature_set():
    egemaps_names()
    first = egemaps._SMILES["eGeMAPSv02"]
    extract_egemaps(sine(0.2), SR)
    assert egemaps._SMILES["eGeMAPSv02"] is first


def test_bad_arguments():
    with pytest.raises(ValueError, match="feature set"):
        egemaps_names("GeMAPS-ish")
    with pytest.raises(ValueError, match="mono"):
        extract_egemaps(np.zeros((2, 1000), np.float32), SR)
    with pytest.raises(ValueError, match="empty"):
        extract_egemaps(np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError, match="sample rate"):
        extract_egemaps(sine(), 0)


def test_extraction_survives_tensorflow_loaded_first():
    """libSMILEapi loaded after TensorFlow aborts ("malloc(): invalid size"); keras_models preloads it."""
    import subprocess
    import sys

    code = ("import numpy as np; import ser.models.keras_models; from ser.egemaps import extract_egemaps; "
            "rng = np.random.default_rng(0); "
            "[extract_egemaps((0.1 * rng.standard_normal(32000)).astype(np.float32), 16000) for _ in range(60)]; "
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_preload_library_finds_the_native_library():
    assert egemaps.preload_library() is True


def voiced(seed: int, seconds: float) -> np.ndarray:
    """A gliding harmonic tone with noise: F0, jitter, formant-ish and loudness values all defined."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.clip(np.sin(np.pi * 4 * t), 0, None)
    return (0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_reused_engine_gives_the_values_of_a_fresh_smile():
    """One engine per process, run and reset per clip, equals opensmile's own build-per-call path, in any order."""
    import warnings

    import opensmile

    fresh = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    clips = [voiced(0, 2.0), np.zeros(80, np.float32), voiced(1, 0.7), sine(1.5), voiced(2, 3.3), voiced(0, 2.0)]
    for clip in clips:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = fresh.process_signal(clip, SR).to_numpy(np.float64).reshape(-1)
        want = np.nan_to_num(want, nan=0.0).astype(np.float32)
        np.testing.assert_array_equal(extract_egemaps(clip, SR), want)
    assert isinstance(egemaps._ENGINES[("eGeMAPSv02", SR)], egemaps._Engine)


def test_no_native_set_up_per_call(monkeypatch):
    from opensmile.core.lib import OpenSMILE

    extract_egemaps(voiced(3, 1.0), SR)  # the engine for (set, rate) exists from here on
    engine = egemaps._ENGINES[("eGeMAPSv02", SR)]
    calls = []
    original = OpenSMILE.initialize
    monkeypatch.setattr(OpenSMILE, "initialize", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    first = extract_egemaps(voiced(4, 1.0), SR)
    for seed in range(5, 9):
        extract_egemaps(voiced(seed, 1.0), SR)
    assert calls == []
    assert egemaps._ENGINES[("eGeMAPSv02", SR)] is engine
    np.testing.assert_array_equal(extract_egemaps(voiced(4, 1.0), SR), first)


def test_a_forked_child_builds_its_own_engine():
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    clips = [voiced(seed, 1.2) for seed in range(4)]
    here = [extract_egemaps(c, SR) for c in clips]  # the parent holds an engine before the fork
    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        there = list(pool.map(_child_extract, clips))
    for a, (b, owners) in zip(here, there):
        np.testing.assert_array_equal(a, b)
        assert os.getpid() not in owners  # the worker never ran the parent's native instance


def _child_extract(clip: np.ndarray) -> tuple[np.ndarray, set[int]]:
    vector = extract_egemaps(clip, SR)
    return vector, {e.pid for e in egemaps._ENGINES.values()}
