"""ser.augment: config validation, and copies reproducible per (seed, utt_id, copy) without touching global RNGs."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from audiomentations import AddColorNoise, AddGaussianSNR, Gain, PitchShift, Shift, TimeStretch

from ser.augment import augment_copy, build_augmenter, derive_seed, n_copies, validate_config

SR = 16000

FULL = {
    "copies": 2,
    "noise": {"p": 1.0, "min_snr_db": 10, "max_snr_db": 30, "colored": True},
    "pitch_shift": {"p": 1.0, "min_semitones": -2, "max_semitones": 2},
    "time_stretch": {"p": 1.0, "min_rate": 0.9, "max_rate": 1.1},
    "gain": {"p": 1.0, "min_db": -6, "max_db": 6},
    "shift": {"p": 1.0, "min_fraction": -0.1, "max_fraction": 0.1},
}


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    t = np.arange(SR // 2) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture(scope="module")
def augmenter():
    return build_augmenter(FULL)


def run(audio, augmenter, utt="spk1_utt1", copy=0, seed=42):
    return augment_copy(audio, SR, augmenter, utt_id=utt, copy=copy, seed=seed)


def test_build_picks_transforms_and_maps_arguments():
    aug = build_augmenter(FULL)
    assert [type(t) for t in aug.transforms] == [TimeStretch, PitchShift, Shift, Gain, AddColorNoise]
    stretch, pitch, shift, gain, noise = aug.transforms
    assert (stretch.min_rate, stretch.max_rate, stretch.leave_length_unchanged) == (0.9, 1.1, False)
    assert (pitch.min_semitones, pitch.max_semitones) == (-2, 2)
    assert (shift.min_shift, shift.max_shift, shift.shift_unit, shift.rollover) == (-0.1, 0.1, "fraction", True)
    assert (gain.min_gain_db, gain.max_gain_db) == (-6, 6)
    assert (noise.min_snr_db, noise.max_snr_db, noise.p) == (10, 30, 1.0)

    white = build_augmenter({"noise": {"p": 0.5, "min_snr_db": 5, "max_snr_db": 15, "colored": False}})
    assert [type(t) for t in white.transforms] == [AddGaussianSNR]
    assert (white.transforms[0].min_snr_db, white.transforms[0].max_snr_db, white.transforms[0].p) == (5, 15, 0.5)


def test_zero_p_and_absent_blocks_are_skipped():
    cfg = {"copies": 1, "gain": {"p": 0.0, "min_db": -6, "max_db": 6}, "shift": None,
           "pitch_shift": {"p": 0.3}}
    aug = build_augmenter(cfg)
    assert [type(t) for t in aug.transforms] == [PitchShift]
    assert aug.transforms[0].p == 0.3 and aug.transforms[0].min_semitones == -2.0  # defaults filled in
    assert validate_config(None) == {} and build_augmenter({}).transforms == []


def test_same_key_gives_identical_bytes(voice, augmenter):
    a = run(voice, augmenter)
    b = run(voice, augmenter)
    c = run(voice, build_augmenter(FULL))  # a fresh augmenter too
    assert a.tobytes() == b.tobytes() == c.tobytes()
    assert not np.array_equal(a[: len(voice)] if len(a) >= len(voice) else a, voice[: len(a)])


def test_different_copy_utt_or_seed_differs(voice, augmenter):
    base = run(voice, augmenter)
    for other in (run(voice, augmenter, copy=1), run(voice, augmenter, utt="spk1_utt2"),
                  run(voice, augmenter, seed=43)):
        assert other.tobytes() != base.tobytes()


def test_other_threads_drawing_from_global_random_change_nothing(voice, augmenter):
    # Dask's and Prefect's timers jitter with the global `random` in their own threads; a run with such
    # a thread must give the copies a quiet run gives (the Dask-vs-thread-runner mismatch).
    quiet = [run(voice, augmenter, copy=c).tobytes() for c in range(1, 21)]
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            random.random()

    noisy = threading.Thread(target=draw, daemon=True)
    noisy.start()
    try:
        busy = [run(voice, augmenter, copy=c).tobytes() for c in range(1, 21)]
    finally:
        stop.set()
        noisy.join()
    assert busy == quiet


def test_derive_seed_is_stable():
    # Pinned value: SHA-256 based, so it never changes between runs, processes or machines.
    assert derive_seed(42, "spk1_utt1", 0) == derive_seed(42, "spk1_utt1", 0)
    assert derive_seed(42, "spk1_utt1", 0) == 1309304373
    assert len({derive_seed(42, "u", c) for c in range(100)}) == 100
    assert 0 <= derive_seed(7, "ü-ñ", 3) < 2**32


def test_global_rng_state_untouched(voice, augmenter):
    random.seed(123)
    np.random.seed(123)
    py_state, np_state = random.getstate(), np.random.get_state()
    run(voice, augmenter)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    # and the next draws are the ones an untouched generator would give
    expected_py, expected_np = random.random(), np.random.rand()
    random.seed(123)
    np.random.seed(123)
    assert (random.random(), np.random.rand()) == (expected_py, expected_np)


def test_output_is_finite_float32_new_array(voice, augmenter):
    src = voice.copy()
    for copy in range(4):
        out = run(src, augmenter, copy=copy)
        assert out.dtype == np.float32 and out.ndim == 1 and np.isfinite(out).all()
        assert out is not src
    assert np.array_equal(src, voice)  # input not modified in place
    # float64 input is accepted and converted
    assert run(voice.astype(np.float64), augmenter).dtype == np.float32


def test_time_stretch_length(voice):
    keep = build_augmenter({"time_stretch": {"p": 1.0, "min_rate": 0.8, "max_rate": 0.8,
                                             "leave_length_unchanged": True}})
    assert len(run(voice, keep)) == len(voice)
    free = build_augmenter({"time_stretch": {"p": 1.0, "min_rate": 0.8, "max_rate": 0.8}})
    assert abs(len(run(voice, free)) - len(voice) / 0.8) <= 2  # default: duration follows the rate
    others = build_augmenter({k: v for k, v in FULL.items() if k != "time_stretch"})
    assert all(len(run(voice, others, copy=c)) == len(voice) for c in range(3))


def test_gain_only_scales(voice):
    aug = build_augmenter({"gain": {"p": 1.0, "min_db": 6, "max_db": 6}})
    np.testing.assert_allclose(run(voice, aug), voice * 10 ** (6 / 20), rtol=1e-5, atol=1e-7)


def test_empty_config_returns_input_unchanged(voice):
    for cfg in ({}, {"copies": 3}, {name: {"p": 0} for name in FULL if name != "copies"}):
        out = run(voice, build_augmenter(cfg))
        assert out.tobytes() == voice.tobytes()


def test_n_copies():
    assert n_copies(FULL) == 2 and n_copies({}) == 0 and n_copies(None) == 0
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="augment.copies"):
            n_copies({"copies": bad})


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"reverb": {"p": 0.5}}, "augment.reverb"),
        ({"copies": -1}, "augment.copies"),
        ({"copies": 1.5}, "augment.copies"),
        ({"noise": {"p": 1.5}}, "augment.noise.p"),
        ({"noise": {"p": -0.1}}, "augment.noise.p"),
        ({"gain": {"min_db": -6}}, "augment.gain.p"),  # p is required
        ({"noise": {"p": 0.5, "min_snr_db": 30, "max_snr_db": 10}}, "augment.noise.min_snr_db"),
        ({"pitch_shift": {"p": 0.5, "min_semitones": 3, "max_semitones": 1}}, "augment.pitch_shift.min_semitones"),
        ({"time_stretch": {"p": 0.5, "min_rate": 1.2, "max_rate": 0.9}}, "augment.time_stretch.min_rate"),
        ({"shift": {"p": 0.5, "min_fraction": 0.2, "max_fraction": 0.1}}, "augment.shift.min_fraction"),
        ({"gain": {"p": 0.5, "min_gain_db": -6}}, "augment.gain.min_gain_db"),  # audiomentations' name is not ours
        ({"noise": {"p": 0.5, "colored": "yes"}}, "augment.noise.colored"),
        ({"gain": {"p": "high"}}, "augment.gain.p"),
        ({"gain": [1, 2]}, "augment.gain"),
        ({"pitch_shift": {"p": 0.5, "min_semitones": -30}}, "augment.pitch_shift"),  # library range check
        ({"shift": {"p": 0.5, "max_fraction": 2.0}}, "augment.shift"),
    ],
)
def test_invalid_config_names_the_key(cfg, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        build_augmenter(cfg)


def test_invalid_audio_input(augmenter):
    with pytest.raises(ValueError, match="mono"):
        augment_copy(np.zeros((2, 100), np.float32), SR, augmenter, utt_id="u", copy=0, seed=1)
    with pytest.raises(ValueError, match="non-finite"):
        augment_copy(np.array([0.0, np.nan], np.float32), SR, augmenter, utt_id="u", copy=0, seed=1)
