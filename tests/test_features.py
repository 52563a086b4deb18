"""ser.features: values against librosa's own functions, names, edge cases, config."""
from __future__ import annotations

import contextlib
import librosa
import numpy as np
import pytest
import scipy.stats

from ser import features as F

SR = 16000
CFG = F.FeatureConfig()
STFT = dict(n_fft=CFG.n_fft, hop_length=CFG.hop_length, win_length=CFG.win_length)
MEL = dict(n_mels=CFG.n_mels, fmin=CFG.fmin, fmax=CFG.fmax)


def _sine(freq: float = 440.0, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _speechy(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """Harmonics with a gliding f0 under an envelope, plus noise: every feature varies over time."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(150 + 60 * np.sin(2 * np.pi * 1.3 * t)) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 15)) * (0.3 + 0.7 * np.abs(np.sin(2 * np.pi * 2.5 * t)))
    return (0.3 * y + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def sine() -> np.ndarray:
    return _sine()


@pytest.fixture(scope="module")
def sine_feats(sine) -> dict[str, float]:
    return F.extract_pooled(sine, CFG)


def _rows(d: dict[str, float], family: str, n: int, stat: str, width: int) -> np.ndarray:
    return np.array([d[f"{family}_{i:0{width}d}_{stat}"] for i in range(1, n + 1)])


# ---------------------------------------------------------------------------------------------- values


def test_sine_chroma_peaks_at_a(sine_feats):
    chroma = _rows(sine_feats, "chroma", 12, "mean", 2)
    assert int(np.argmax(chroma)) == 9  # C=0 ... A=9, i.e. chroma_10
    assert chroma[9] == pytest.approx(1.0, abs=1e-6)  # per-frame max-normalised, A is the max everywhere


def test_sine_zcr(sine_feats):
    assert sine_feats["zcr_mean"] == pytest.approx(2 * 440 / SR, rel=0.05)


def test_mfcc_matches_librosa(sine, sine_feats):
    for y, d in ((sine, sine_feats), (_speechy(), F.extract_pooled(_speechy(), CFG))):
        ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=CFG.n_mfcc, **STFT, **MEL)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(_rows(d, "mfcc", 20, "mean", 2), ref.mean(axis=1), rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(_rows(d, "mfcc", 20, "std", 2), ref.std(axis=1), rtol=1e-4, atol=1e-4 * scale)
        for order, family in ((1, "mfcc_d"), (2, "mfcc_dd")):
            delta = librosa.feature.delta(ref, order=order)
            np.testing.assert_allclose(_rows(d, family, 20, "mean", 2), delta.mean(axis=1), atol=1e-4 * scale)
            np.testing.assert_allclose(_rows(d, family, 20, "std", 2), delta.std(axis=1), rtol=1e-3, atol=1e-4 * scale)


def test_mel_matches_librosa_melspectrogram():
    y = _speechy()
    d = F.extract_pooled(y, CFG)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, **STFT, **MEL))
    np.testing.assert_allclose(_rows(d, "mel", 64, "mean", 3), ref.mean(axis=1), atol=1e-3)
    np.testing.assert_allclose(_rows(d, "mel", 64, "std", 3), ref.std(axis=1), atol=1e-3)
    seq, n = F.extract_logmel(y, CFG)
    assert n == ref.shape[1]
    np.testing.assert_allclose(seq[:n], ref.T, atol=1e-3)


def test_contrast_rms_chroma_zcr_match_librosa_on_same_stft():
    y = _speechy(seed=3)
    d = F.extract_pooled(y, CFG)
    mag = np.abs(librosa.stft(y, **STFT))
    contrast = librosa.feature.spectral_contrast(S=mag, sr=SR, n_fft=CFG.n_fft, n_bands=CFG.n_contrast_bands,
                                                 fmin=CFG.contrast_fmin)
    assert contrast.shape[0] == 7
    np.testing.assert_allclose(_rows(d, "contrast", 7, "mean", 1), contrast.mean(axis=1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(_rows(d, "contrast", 7, "std", 1), contrast.std(axis=1), rtol=1e-4, atol=1e-3)
    rms = librosa.feature.rms(S=mag, frame_length=CFG.n_fft)
    assert d["rms_mean"] == pytest.approx(rms.mean(), rel=1e-5)
    assert d["rms_std"] == pytest.approx(rms.std(), rel=1e-4)
    chroma = librosa.feature.chroma_stft(S=mag**2, sr=SR, n_fft=CFG.n_fft, tuning=0.0)
    np.testing.assert_allclose(_rows(d, "chroma", 12, "mean", 2), chroma.mean(axis=1), atol=1e-5)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=CFG.n_fft, hop_length=CFG.hop_length)
    assert d["zcr_mean"] == pytest.approx(zcr.mean(), rel=1e-6)
    assert d["zcr_std"] == pytest.approx(zcr.std(), rel=1e-5)


def test_stft_matches_librosa_stft():
    for n in (0, 1, 100, 511, 512, 513, 7777):
        y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        ours = F._magnitude(F._as_signal(y), CFG)
        with pytest.warns(UserWarning) if n < CFG.n_fft else contextlib.nullcontext():
            ref = np.abs(librosa.stft(y if n else np.zeros(1, np.float32), **STFT))
        assert ours.shape == ref.shape == (257, F.n_frames_for(n, CFG))
        np.testing.assert_allclose(ours, ref, atol=1e-4 * max(1.0, ref.max()))


def test_deltas_of_short_clips_match_librosa_with_narrowed_width():
    rng = np.random.default_rng(0)
    for n in (3, 4, 8, 9, 10, 40):
        x = rng.standard_normal((5, n)).astype(np.float32)
        width = min(9, n if n % 2 else n - 1)
        d1, d2 = F._deltas(x)
        np.testing.assert_allclose(d1, librosa.feature.delta(x, width=width), atol=1e-5)
        np.testing.assert_allclose(d2, librosa.feature.delta(x, width=width, order=2), atol=1e-5)
    d1, d2 = F._deltas(np.ones((5, 2), np.float32))
    assert not d1.any() and not d2.any()


def test_all_stats_match_numpy_and_scipy():
    cfg = F.FeatureConfig(stats=list(F.STATS))
    y = _speechy(seed=5)
    vec = F.extract_pooled_vector(y, cfg)
    names = F.pooled_feature_names(cfg)
    ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=cfg.n_mfcc, **STFT, **MEL)[2]  # mfcc_03
    expected = {"mean": ref.mean(), "std": ref.std(), "min": ref.min(), "max": ref.max(), "median": np.median(ref),
                "skew": scipy.stats.skew(ref), "kurtosis": scipy.stats.kurtosis(ref)}
    for stat, value in expected.items():
        got = vec[names.index(f"mfcc_03_{stat}")]
        assert got == pytest.approx(value, rel=1e-3, abs=1e-3), stat


# ---------------------------------------------------------------------------------------------- names


def test_names_match_vector_and_are_documented(sine):
    names = F.pooled_feature_names(CFG)
    vec = F.extract_pooled_vector(sine, CFG)
    assert vec.dtype == np.float32 and vec.shape == (len(names),) == (F.n_pooled_features(CFG),)
    assert len(set(names)) == len(names)
    # 20 MFCC x 3 + 12 chroma + 64 mel + 7 contrast + zcr + rms = 145 rows, x (mean, std)
    assert len(names) == 290
    for name in ("mfcc_01_mean", "mfcc_20_std", "mfcc_d_03_std", "mfcc_dd_20_mean", "chroma_01_mean",
                 "chroma_12_std", "mel_001_mean", "mel_012_mean", "mel_064_std", "contrast_1_mean",
                 "contrast_2_std", "contrast_7_std", "zcr_mean", "zcr_std", "rms_mean", "rms_std"):
        assert name in names
    assert names[:4] == ["mfcc_01_mean", "mfcc_01_std", "mfcc_02_mean", "mfcc_02_std"]
    assert names[-2:] == ["rms_mean", "rms_std"]
    assert "mfcc_00_mean" not in names and "chroma_13_mean" not in names
    assert list(F.extract_pooled(sine, CFG)) == names


def test_feature_count_follows_config():
    def count(**kw):
        return len(F.pooled_feature_names(F.FeatureConfig(**kw)))

    base = count()
    assert count(n_mfcc=13) == base - 2 * 3 * 7
    assert count(mfcc_deltas=False) == base - 2 * 2 * 20
    assert count(n_mels=40) == base - 2 * 24
    assert count(n_chroma=0) == base - 2 * 12
    assert count(n_contrast_bands=4) == base - 2 * 2
    assert count(n_contrast_bands=0) == base - 2 * 7
    assert count(stats=["mean", "std", "skew"]) == base // 2 * 3
    cfg = F.FeatureConfig(n_mfcc=13, mfcc_deltas=False, n_mels=40, stats=["median"])
    assert F.n_pooled_features(cfg) == 13 + 12 + 40 + 7 + 2
    assert F.extract_pooled_vector(_sine(seconds=0.3), cfg).shape == (F.n_pooled_features(cfg),)
    # more than 999 mel bands would widen the mel numbers; 100 mfcc widens to 3 digits
    assert "mfcc_001_mean" in F.pooled_feature_names(F.FeatureConfig(n_mfcc=100, n_mels=128))


# ---------------------------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("audio", [np.zeros(3 * SR, np.float32), np.zeros(0, np.float32), _sine(seconds=0.01),
                                   np.zeros(160, np.float32), np.full(SR, 0.5, np.float32)],
                         ids=["silence", "empty", "10ms", "10ms-silence", "dc"])
def test_degenerate_audio_is_finite(audio):
    cfg = F.FeatureConfig(stats=list(F.STATS))
    vec, seq, n = F.extract_all(audio, cfg)
    assert np.isfinite(vec).all() and np.isfinite(seq).all()
    assert seq.shape == (cfg.logmel_frames, cfg.n_mels) and seq.dtype == np.float32
    assert n == F.n_frames_for(audio.size, cfg)


def test_silence_values():
    d = F.extract_pooled(np.zeros(SR, np.float32), CFG)
    assert d["mel_001_mean"] == pytest.approx(-100.0)
    assert d["rms_mean"] == 0 and d["zcr_mean"] == 0 and d["chroma_01_mean"] == 0
    assert d["mfcc_d_01_std"] == pytest.approx(0, abs=1e-5)


def test_logmel_short_clip_padded_with_floor():
    y = _sine(seconds=0.01)  # 160 samples -> 2 frames
    seq, n = F.extract_logmel(y, CFG)
    assert n == 2 == 1 + 160 // CFG.hop_length
    assert seq.shape == (300, 64)
    assert np.all(seq[n:] == seq[:n].min())
    assert not np.all(seq[:n] == seq[:n].min())


def test_logmel_long_clip_centre_cropped():
    y = _speechy(seconds=5.0)  # 501 frames
    seq, n = F.extract_logmel(y, CFG)
    assert n == 501
    assert seq.shape == (300, 64)
    full = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, **STFT, **MEL)).T
    start = (501 - 300) // 2
    np.testing.assert_allclose(seq, full[start:start + 300], atol=1e-3)
    seq3, n3 = F.extract_logmel(_speechy(seconds=3.0), CFG)
    assert n3 == 301 and seq3.shape == (300, 64)


def test_extract_all_equals_separate_extractors():
    y = _speechy(seconds=2.0, seed=9)
    vec, seq, n = F.extract_all(y, CFG)
    seq2, n2 = F.extract_logmel(y, CFG)
    np.testing.assert_array_equal(vec, F.extract_pooled_vector(y, CFG))
    np.testing.assert_array_equal(seq, seq2)
    assert n == n2 == 201


def test_bad_audio_refused():
    with pytest.raises(ValueError, match="mono"):
        F.extract_pooled_vector(np.zeros((2, 100), np.float32), CFG)
    with pytest.raises(ValueError, match="non-finite"):
        F.extract_pooled_vector(np.array([0.0, np.nan, 0.1], np.float32), CFG)


# ---------------------------------------------------------------------------------------------- config


PARAMS = {"features": {"sample_rate": 16000, "n_fft": 512, "hop_length": 160, "win_length": 400, "n_mfcc": 20,
                       "mfcc_deltas": True, "n_mels": 64, "fmin": 50, "fmax": 8000, "n_chroma": 12,
                       "n_contrast_bands": 6, "stats": ["mean", "std"], "logmel_frames": 300}}


def test_from_params_whole_or_section():
    cfg = F.FeatureConfig.from_params(PARAMS)
    assert cfg == F.FeatureConfig.from_params(PARAMS["features"]) == CFG
    assert cfg.stats == ("mean", "std") and isinstance(cfg.fmin, float)
    assert F.FeatureConfig.from_params({"features": {"n_mfcc": 13}}).n_mfcc == 13
    assert F.FeatureConfig.from_params({"features": {"fmax": None}}).fmax == 8000.0
    assert F.FeatureConfig.from_params(cfg.to_dict()) == cfg
    hash(cfg)


@pytest.mark.parametrize("key,value,match", [
    ("n_fft", 0, "must be >= 16"),
    ("n_fft", 512.5, "integer"),
    ("hop_length", True, "integer"),
    ("win_length", 1024, "1..n_fft"),
    ("n_mfcc", 65, "1..n_mels"),
    ("mfcc_deltas", "yes", "true or false"),
    ("fmax", 9000, "sample_rate / 2"),
    ("fmin", -1, ">= 0"),
    ("n_chroma", -1, ">= 0"),
    ("n_contrast_bands", 7, "below sample_rate / 2"),
    ("stats", ["mean", "mode"], "unknown statistic"),
    ("stats", [], "at least one"),
    ("stats", ["mean", "mean"], "each once"),
    ("stats", "mean", "list"),
    ("logmel_frames", 0, ">= 1"),
    ("sample_rate", "16k", "integer"),
    ("n_mels", 0, ">= 1"),
])
def test_validation_names_the_key(key, value, match):
    params = {"features": {**PARAMS["features"], key: value}}
    with pytest.raises(ValueError) as err:
        F.FeatureConfig.from_params(params)
    assert str(err.value).startswith(f"features.{key}: ")
    assert match in str(err.value)


def test_unknown_key_refused():
    with pytest.raises(ValueError, match=r"features\.n_mfccs: unknown key"):
        F.FeatureConfig.from_params({"features": {"n_mfccs": 20}})


def test_config_hash_stable_and_sensitive():
    h = CFG.config_hash()
    assert h == F.FeatureConfig().config_hash() == F.FeatureConfig.from_params(PARAMS).config_hash()
    assert len(h) == 12 and int(h, 16) >= 0
    assert F.FeatureConfig(fmin=50).config_hash() == F.FeatureConfig(fmin=50.0).config_hash()
    changed = {F.FeatureConfig(**{k: v}).config_hash() for k, v in [
        ("n_mfcc", 13), ("mfcc_deltas", False), ("n_mels", 40), ("fmin", 60.0), ("stats", ["mean"]),
        ("stats", ["std", "mean"]), ("logmel_frames", 200), ("hop_length", 128), ("contrast_fmin", 150.0)]}
    assert h not in changed and len(changed) == 9


def test_pooled_batch_equals_one_clip_at_a_time(write_wav, tmp_path):
    from ser.audio import load_audio

    cfg = F.FeatureConfig()
    audios = [load_audio(write_wav(tmp_path / f"tone_{s}.wav", seconds=s), cfg.sample_rate) for s in (0.3, 1.0, 2.5)]
    batch = F.extract_pooled_batch(audios, cfg)
    assert len(batch) == 3 and F.extract_pooled_batch([], cfg) == []
    for one, audio in zip(batch, audios):
        np.testing.assert_array_equal(one, F.extract_pooled_vector(audio, cfg))
