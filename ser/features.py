"""Hand-crafted features from ONE short-time Fourier transform per signal.

Every feature is derived from a single magnitude STFT (the values of ``np.abs(librosa.stft(...))``:
Hann window, centred frames, zero padding) of a mono float32 signal that is already at
``FeatureConfig.sample_rate`` (``ser.audio.load_audio`` gives that):

===============  ==========================================================================  ======
family           frame-level definition (all (rows, frames))                                 rows
===============  ==========================================================================  ======
``mfcc``         DCT-II (orthonormal) of the log-mel dB below = ``librosa.feature.mfcc``      n_mfcc
``mfcc_d``       first derivative of the MFCCs (``librosa.feature.delta``, width 9)          n_mfcc
``mfcc_dd``      second derivative of the MFCCs (``librosa.feature.delta(order=2)``)          n_mfcc
``chroma``       chroma filter bank @ power, max-normalised per frame (``chroma_stft``)       n_chroma
``mel``          log-mel power in dB (``power_to_db(melspectrogram)``, amin 1e-10, top 80 dB) n_mels
``contrast``     spectral contrast in dB of the magnitude (``spectral_contrast``)             bands+1
``zcr``          zero-crossing rate of the time signal (``zero_crossing_rate``)               1
``rms``          RMS energy from the magnitude (``librosa.feature.rms(S=...)``)               1
===============  ==========================================================================  ======

(``mfcc_d``/``mfcc_dd`` only when ``mfcc_deltas``; ``chroma``/``contrast`` are skipped when their
row count is 0.) The definitions equal librosa's to float32 rounding -- ``tests/test_features.py``
checks each against librosa's own function -- but the per-file work is one STFT (one strided frame
matrix through one ``scipy.fft.rfft``) plus a few small matrix products: the filter banks, the
window, the DCT and delta operators and the contrast band edges are built once per configuration
(``functools.lru_cache``). Two deliberate departures from librosa's *defaults*:

* chroma uses ``tuning=0.0`` (A4 = 440 Hz) instead of estimating the tuning per clip with
  ``piptrack``, which costs more than all other features together and means nothing for speech;
* ``zcr`` frames are ``n_fft`` samples with hop ``hop_length`` (librosa's default is 2048/512), so
  every family has exactly the same frames: ``1 + len(audio) // hop_length`` (centred frames).

Pooled features: each row is summarised over its frames with ``FeatureConfig.stats``; the vector is
ordered family by family (table order), row by row, stat by stat, and ``pooled_feature_names``
names every value ``<family>_<row>_<stat>`` with 1-based, zero-padded row numbers (``mfcc_01_mean``,
``mfcc_d_03_std``, ``mfcc_dd_20_std``, ``chroma_01_mean`` = pitch class C ... ``chroma_10_mean`` =
A, ``mel_001_mean`` = the lowest band, ``contrast_1_std`` = the band below ``contrast_fmin``) and
plain ``zcr_mean`` / ``rms_std`` for the single-row families. Widths: mfcc/chroma 2 digits,
mel 3, contrast 1 -- more if more rows are configured.

Log-mel sequences (for sequence models): the same log-mel dB, transposed to (frames, n_mels) and
brought to exactly ``logmel_frames`` frames: longer clips keep their CENTRAL ``logmel_frames``
frames (the first ``(n - logmel_frames) // 2`` frames are dropped), shorter ones are padded at the
end with the clip's own minimum (its floor: after the 80 dB top clip, the quietest value it holds).
The true frame count is returned with it so a model can mask the padding.

Edge cases: signals shorter than ``n_fft`` need no special handling (the centred STFT zero-pads
``n_fft // 2`` samples on each side, so every clip has at least one full frame) and an empty
signal is one zero sample; digital silence gives -100 dB everywhere (amin 1e-10) and chroma 0;
every log has its floor, so nothing is infinite. Values that are undefined -- skew/kurtosis of a constant
row, deltas of fewer than 3 frames -- are 0. Non-finite audio is refused (ValueError).

Parallel use: the matrix products here are tiny, and a multi-threaded BLAS on busy cores makes them
~10x slower, so a process pool should call ``limit_blas_threads()`` in each worker (e.g. as its
``initializer``) and parallelise over files instead.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from ser.params import AudioParams, FeaturesParams

__all__ = [
    "FEATURES_VERSION",
    "STATS",
    "FeatureConfig",
    "extract_all",
    "extract_logmel",
    "extract_pooled",
    "extract_pooled_vector",
    "extract_pooled_batch",
    "fuse",
    "limit_blas_threads",
    "n_frames_for",
    "n_pooled_features",
    "pooled_feature_names",
]

# Bumped whenever a definition changes so that config_hash() changes too and models trained on
# the old features are refused.
FEATURES_VERSION = 1

STATS: tuple[str, ...] = ("mean", "std", "min", "max", "median", "skew", "kurtosis")
"""Supported pooling statistics. std is the population std (ddof=0); skew and kurtosis are the
biased Fisher-Pearson estimates (= scipy.stats.skew / scipy.stats.kurtosis defaults, kurtosis is
the excess: 0 for a Gaussian), 0 for a constant row."""

AMIN = 1e-10  # power floor before log10: digital silence is -100 dB, never -inf
TOP_DB = 80.0  # dB values are clipped at (clip maximum - TOP_DB), as librosa.power_to_db does
DELTA_WIDTH = 9  # librosa.feature.delta's default window (frames); narrowed for shorter clips
CONTRAST_QUANTILE = 0.02  # librosa.feature.spectral_contrast's default
ZC_THRESHOLD = 1e-10  # |x| <= this counts as 0 (positive) for zero crossings, as in librosa
_ROW_WIDTH = {"mfcc": 2, "mfcc_d": 2, "mfcc_dd": 2, "chroma": 2, "mel": 3, "contrast": 1}
_D = FeaturesParams()  # the defaults live in ser.params; FeatureConfig repeats none of them


@dataclass(frozen=True)
class FeatureConfig:
    """The ``features:`` block of params.yaml. Frozen and hashable (it keys the filter-bank caches).

    Build it with ``FeatureConfig.from_params(params)``; constructing it directly validates too.
    Every default is ``ser.params.FeaturesParams``'s (``sample_rate``: ``AudioParams``'s).
    """

    sample_rate: int = AudioParams().sample_rate
    """Hz. The audio given to the extractors must already be at this rate."""
    n_fft: int = _D.n_fft
    """STFT size in samples (32 ms at 16 kHz): n_fft // 2 + 1 frequency bins. Also the ZCR frame."""
    hop_length: int = _D.hop_length
    """Samples between frame centres (10 ms at 16 kHz); frames = 1 + len(audio) // hop_length."""
    win_length: int = _D.win_length
    """Hann window length in samples (25 ms at 16 kHz), zero-padded to n_fft; <= n_fft."""
    n_mfcc: int = _D.n_mfcc
    """MFCC coefficients kept (c0 included), 1..n_mels."""
    mfcc_deltas: bool = _D.mfcc_deltas
    """Also pool the delta and delta-delta of the MFCCs (adds 2 * n_mfcc rows)."""
    n_mels: int = _D.n_mels
    """Mel bands (Slaney mel scale and area normalisation, librosa's default): pooled ``mel_*``
    rows, the MFCC input, and the width of the log-mel sequences."""
    fmin: float = _D.fmin
    """Lowest mel filter edge, Hz."""
    fmax: float | None = _D.fmax
    """Highest mel filter edge, Hz, <= sample_rate / 2 (null in params means sample_rate / 2)."""
    n_chroma: int = _D.n_chroma
    """Chroma bins per octave (0 disables chroma). Bin 1 is C, bin 10 is A (A4 = 440 Hz)."""
    n_contrast_bands: int = _D.n_contrast_bands
    """Spectral-contrast octave bands above contrast_fmin (0 disables contrast); gives
    n_contrast_bands + 1 rows, the first one being 0..contrast_fmin Hz."""
    contrast_fmin: float = _D.contrast_fmin
    """Upper edge of the lowest contrast band, Hz (librosa's default); band k spans
    contrast_fmin * 2**(k-1) .. * 2**k, the last one runs to Nyquist, and
    contrast_fmin * 2**(n_contrast_bands - 1) must be below sample_rate / 2."""
    stats: tuple[str, ...] = tuple(_D.stats)
    """Statistics over frames, in output order; any of STATS, no repeats."""
    logmel_frames: int = _D.logmel_frames
    """Frames per log-mel sequence (300 = 3 s at a 10 ms hop): longer clips are centre-cropped,
    shorter ones padded at the end with their floor value."""
    opensmile: str | None = _D.opensmile
    """openSMILE functionals appended to the pooled vector as ``egemaps_*`` columns (feature fusion):
    eGeMAPSv02 (88 values) or ComParE_2016; null for none. Computed from the time signal."""
    encoder: Any = None
    """A pretrained speech encoder's pooled frames appended as ``enc_mean_*``/``enc_std_*`` columns
    (``ser.encoder.EncoderConfig``, or its mapping from params.yaml); null for none. Needs 16 kHz."""

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        for name in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mfcc", "n_mels",
                     "n_chroma", "n_contrast_bands", "logmel_frames"):
            set_(name, _int(name, getattr(self, name)))
        fmax = self.fmax if self.fmax is not None else self.sample_rate / 2
        for name, value in (("fmin", self.fmin), ("fmax", fmax), ("contrast_fmin", self.contrast_fmin)):
            set_(name, _float(name, value))
        if not isinstance(self.mfcc_deltas, (bool, np.bool_)):
            raise ValueError(f"features.mfcc_deltas: must be true or false, got {self.mfcc_deltas!r}")
        set_("mfcc_deltas", bool(self.mfcc_deltas))
        stats = self.stats
        if isinstance(stats, str) or not isinstance(stats, (list, tuple)):
            raise ValueError(f"features.stats: must be a list of statistics from {list(STATS)}, got {stats!r}")
        stats = tuple(stats)
        unknown = [s for s in stats if s not in STATS]
        if unknown:
            raise ValueError(f"features.stats: unknown statistic(s) {unknown}; supported: {list(STATS)}")
        if not stats or len(set(stats)) != len(stats):
            raise ValueError(f"features.stats: must list at least one statistic, each once, got {list(stats)}")
        set_("stats", stats)

        nyquist = self.sample_rate / 2
        _check(self.sample_rate >= 1000, "sample_rate", "must be >= 1000 Hz", self.sample_rate)
        _check(self.n_fft >= 16, "n_fft", "must be >= 16", self.n_fft)
        _check(self.hop_length >= 1, "hop_length", "must be >= 1", self.hop_length)
        _check(1 <= self.win_length <= self.n_fft, "win_length", f"must be in 1..n_fft ({self.n_fft})",
               self.win_length)
        _check(self.n_mels >= 1, "n_mels", "must be >= 1", self.n_mels)
        _check(1 <= self.n_mfcc <= self.n_mels, "n_mfcc", f"must be in 1..n_mels ({self.n_mels})", self.n_mfcc)
        _check(self.fmin >= 0, "fmin", "must be >= 0 Hz", self.fmin)
        _check(self.fmin < self.fmax <= nyquist, "fmax",
               f"must be above fmin ({self.fmin:g}) and at most sample_rate / 2 ({nyquist:g})", self.fmax)
        _check(self.n_chroma >= 0, "n_chroma", "must be >= 0 (0 disables chroma)", self.n_chroma)
        _check(self.n_contrast_bands >= 0, "n_contrast_bands", "must be >= 0 (0 disables contrast)",
               self.n_contrast_bands)
        _check(self.contrast_fmin > 0, "contrast_fmin", "must be > 0 Hz", self.contrast_fmin)
        _check(self.logmel_frames >= 1, "logmel_frames", "must be >= 1", self.logmel_frames)
        if self.opensmile is not None:
            from ser.egemaps import FEATURE_SETS

            _check(self.opensmile in FEATURE_SETS, "opensmile", f"must be null or one of {list(FEATURE_SETS)}",
                   self.opensmile)
        if self.encoder is not None:
            from ser.encoder import EncoderConfig

            if isinstance(self.encoder, Mapping):
                # `name: null` means no encoder, as `encoder: null` does
                set_("encoder", None if "name" in self.encoder and self.encoder["name"] is None
                     else EncoderConfig.from_params(self.encoder))
            elif not isinstance(self.encoder, EncoderConfig):
                raise ValueError(f"features.encoder: must be null or a mapping, got {self.encoder!r}")
            _check(self.encoder is None or self.sample_rate == 16000, "encoder",
                   "needs audio.sample_rate 16000 (Whisper's rate)", self.sample_rate)
        if self.n_contrast_bands:
            top = self.contrast_fmin * 2.0 ** (self.n_contrast_bands - 1)
            _check(top < nyquist, "n_contrast_bands",
                   f"contrast_fmin * 2**(n_contrast_bands - 1) = {top:g} Hz must be below sample_rate / 2 "
                   f"({nyquist:g} Hz); lower n_contrast_bands or contrast_fmin", self.n_contrast_bands)
            freq = np.linspace(0, nyquist, self.n_fft // 2 + 1)
            edges = [0.0] + [self.contrast_fmin * 2.0 ** k for k in range(self.n_contrast_bands + 1)]
            for lo, hi in zip(edges[:-1], edges[1:]):
                _check(bool(np.any((freq >= lo) & (freq <= hi))), "contrast_fmin",
                       f"contrast band {lo:g}..{hi:g} Hz holds no STFT bin at n_fft={self.n_fft}; "
                       "raise contrast_fmin or n_fft", self.contrast_fmin)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> FeatureConfig:
        """From the whole params dict (its ``features`` key) or from the ``features`` block itself.

        Missing keys take the defaults above; an unknown key or a bad value raises ValueError
        naming ``features.<key>``.
        """
        if params is None:
            return cls()
        if not isinstance(params, Mapping):
            raise ValueError(f"features: must be a mapping, got {type(params).__name__}")
        section = params["features"] if "features" in params else params
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise ValueError(f"features: must be a mapping, got {type(section).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in section if k not in known)
        if unknown:
            raise ValueError(f"features.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        return cls(**dict(section))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stats as a list); ``from_params(cfg.to_dict()) == cfg``."""
        d = asdict(self)
        d["stats"] = list(self.stats)
        return d

    def config_hash(self) -> str:
        """12-hex-digit sha1 of the canonical JSON of this config and FEATURES_VERSION.

        Stable across processes and runs; changes when any field (or a feature definition) does.
        """
        d = self.to_dict()
        if self.encoder is not None:  # threads and batch size do not change the values
            d["encoder"] = self.encoder.signature()
        payload = json.dumps({"features_version": FEATURES_VERSION, **d},
                             sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(payload.encode()).hexdigest()[:12]

    @property
    def n_contrast_rows(self) -> int:
        return self.n_contrast_bands + 1 if self.n_contrast_bands else 0


def _check(ok: bool, key: str, message: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"features.{key}: {message}, got {value!r}")


def _int(key: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"features.{key}: must be an integer, got {value!r}")
    return int(value)


def _float(key: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"features.{key}: must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"features.{key}: must be finite, got {value!r}")
    return value


def feature_config(params: Any) -> FeatureConfig:
    """The FeatureConfig of typed params (`features` plus `audio.sample_rate`); a dict is validated first.

    Its own checks (fmax vs Nyquist, contrast bands holding an STFT bin) run here, before any work.
    """
    from ser.params import Settings

    p = Settings.coerce(params)
    return FeatureConfig.from_params({**p.features.model_dump(), "sample_rate": p.audio.sample_rate})


def limit_blas_threads(n_threads: int = 1) -> None:
    """Cap BLAS/OpenMP threads in this process (use in process-pool workers; see module docstring).

    Uses threadpoolctl (a scikit-learn dependency) when importable; otherwise does nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return
    threadpool_limits(limits=int(n_threads))


# --------------------------------------------------------------------------------------------------
# names


def _family_rows(cfg: FeatureConfig) -> list[tuple[str, int]]:
    rows = [("mfcc", cfg.n_mfcc)]
    if cfg.mfcc_deltas:
        rows += [("mfcc_d", cfg.n_mfcc), ("mfcc_dd", cfg.n_mfcc)]
    if cfg.n_chroma:
        rows.append(("chroma", cfg.n_chroma))
    rows.append(("mel", cfg.n_mels))
    if cfg.n_contrast_bands:
        rows.append(("contrast", cfg.n_contrast_rows))
    rows += [("zcr", 1), ("rms", 1)]
    return rows


@functools.lru_cache(maxsize=32)
def _names(cfg: FeatureConfig) -> tuple[str, ...]:
    names = []
    for family, n in _family_rows(cfg):
        if family in ("zcr", "rms"):
            row_names = [family]
        else:
            width = max(_ROW_WIDTH[family], len(str(n)))
            row_names = [f"{family}_{i:0{width}d}" for i in range(1, n + 1)]
        names += [f"{row}_{stat}" for row in row_names for stat in cfg.stats]
    if cfg.opensmile:
        from ser.egemaps import egemaps_names

        names += egemaps_names(cfg.opensmile)
    if cfg.encoder is not None:
        from ser.encoder import encoder_names

        names += encoder_names(cfg.encoder)
    return tuple(names)


def pooled_feature_names(cfg: FeatureConfig | None = None) -> list[str]:
    """Names of the pooled vector's values, in its order (see the module docstring)."""
    return list(_names(cfg or FeatureConfig()))


def n_pooled_features(cfg: FeatureConfig | None = None) -> int:
    """len(pooled_feature_names(cfg)) = len(stats) * (n_mfcc * (3 if mfcc_deltas else 1) + n_chroma
    + n_mels + (n_contrast_bands + 1 if n_contrast_bands else 0) + 2), plus the openSMILE set's size."""
    cfg = cfg or FeatureConfig()
    return len(_names(cfg))


def n_frames_for(n_samples: int, cfg: FeatureConfig | None = None) -> int:
    """Frames of a clip of `n_samples` samples (an empty clip counts as one sample)."""
    cfg = cfg or FeatureConfig()
    return 1 + max(int(n_samples), 1) // cfg.hop_length


# --------------------------------------------------------------------------------------------------
# cached per-config constants


@functools.lru_cache(maxsize=32)
def _mel_basis(cfg: FeatureConfig) -> np.ndarray:
    import librosa

    return np.ascontiguousarray(librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
        dtype=np.float32))


@functools.lru_cache(maxsize=32)
def _chroma_basis(cfg: FeatureConfig) -> np.ndarray:
    import librosa

    return np.ascontiguousarray(librosa.filters.chroma(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, tuning=0.0, n_chroma=cfg.n_chroma, dtype=np.float32))


@functools.lru_cache(maxsize=32)
def _dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Rows 0..n_mfcc-1 of the orthonormal DCT-II matrix: mfcc = D @ logmel (= scipy dct, norm='ortho')."""
    n = np.arange(n_mels, dtype=np.float64)
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    d = np.sqrt(2.0 / n_mels) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels))
    d[0] /= np.sqrt(2.0)
    return np.ascontiguousarray(d, dtype=np.float32)


@functools.lru_cache(maxsize=32)
def _rms_weights(n_fft: int) -> np.ndarray:
    """rms**2 = w @ power, as librosa.feature.rms(S=magnitude, frame_length=n_fft) computes it."""
    w = np.full(n_fft // 2 + 1, 2.0 / n_fft**2, dtype=np.float32)
    w[0] *= 0.5
    if n_fft % 2 == 0:
        w[-1] *= 0.5
    return w


@functools.lru_cache(maxsize=32)
def _contrast_bands(cfg: FeatureConfig) -> tuple[tuple[int, int, int], ...]:
    """(first bin, end bin, quantile count) per band, exactly as librosa.feature.spectral_contrast
    selects them: each band but the first also takes the bin just below it, each but the last
    drops its top bin, and the last runs to Nyquist."""
    n_bands = cfg.n_contrast_bands
    freq = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    octa = np.zeros(n_bands + 2)
    octa[1:] = cfg.contrast_fmin * (2.0 ** np.arange(0, n_bands + 1))
    bands = []
    for k, (lo, hi) in enumerate(zip(octa[:-1], octa[1:])):
        current = (freq >= lo) & (freq <= hi)
        idx = np.flatnonzero(current)
        if k > 0:
            current[idx[0] - 1] = True
        if k == n_bands:
            current[idx[-1] + 1:] = True
        sel = np.flatnonzero(current)
        start, stop = int(sel[0]), int(sel[-1]) + 1
        if k < n_bands:
            stop -= 1
        q = max(int(np.rint(CONTRAST_QUANTILE * np.sum(current))), 1)
        bands.append((start, stop, q))
    return tuple(bands)


# --------------------------------------------------------------------------------------------------
# frame-level features


def _as_signal(audio: np.ndarray) -> np.ndarray:
    y = np.asarray(audio)
    if y.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {y.shape}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.size == 0:
        return np.zeros(1, dtype=np.float32)
    if not np.isfinite(y).all():
        raise ValueError("audio holds non-finite samples (NaN or inf)")
    return y


@functools.lru_cache(maxsize=32)
def _window(cfg: FeatureConfig) -> np.ndarray:
    """librosa.stft's window: periodic Hann of win_length, centred (zero-padded) in n_fft, float32."""
    import librosa

    win = librosa.filters.get_window("hann", cfg.win_length, fftbins=True)
    return np.ascontiguousarray(librosa.util.pad_center(win, size=cfg.n_fft), dtype=np.float32)


def _magnitude(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """|STFT| as np.abs(librosa.stft(y, n_fft, hop_length, win_length, window='hann', center=True,
    pad_mode='constant')): (n_fft // 2 + 1, frames) float32.

    Same frames, window and values (to float32 rounding; tested), computed as one strided frame
    matrix and one scipy.fft.rfft call, about 3x faster than librosa.stft on 3-s clips."""
    from scipy.fft import rfft

    n_fft, hop = cfg.n_fft, cfg.hop_length
    pad = n_fft // 2
    padded = np.zeros(y.size + 2 * pad, dtype=np.float32)  # centred frames, zero padding
    padded[pad:pad + y.size] = y
    n_frames = 1 + (padded.size - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(padded, shape=(n_frames, n_fft),
                                             strides=(hop * padded.itemsize, padded.itemsize), writeable=False)
    spec = rfft(frames * _window(cfg), axis=-1)  # (frames, bins) complex64
    return np.ascontiguousarray(np.abs(spec).T)


def _power_to_db(s: np.ndarray) -> np.ndarray:
    """librosa.power_to_db(s, ref=1.0, amin=AMIN, top_db=TOP_DB), in place-friendly float32."""
    out = np.maximum(s, np.float32(AMIN))
    np.log10(out, out=out)
    out *= np.float32(10.0)
    np.maximum(out, out.max() - np.float32(TOP_DB), out=out)
    return out


@functools.lru_cache(maxsize=16)
def _delta_operator(width: int) -> np.ndarray:
    """(width, width, 2) float32: responses of savgol_filter(width, polyorder=deriv=order,
    mode='interp') for order 1 and 2 to each unit impulse of a `width`-frame signal.

    The filter is linear, so column ``half = width // 2`` holds the interior weights and the first /
    last ``half`` columns the polynomial-fit edge weights, which depend only on the first / last
    `width` frames of any longer signal."""
    from scipy.signal import savgol_filter

    eye = np.eye(width)
    ops = [savgol_filter(eye, width, polyorder=o, deriv=o, axis=-1, mode="interp") for o in (1, 2)]
    return np.ascontiguousarray(np.stack(ops, axis=-1), dtype=np.float32)


def _deltas(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(librosa.feature.delta(x, width=9), librosa.feature.delta(x, width=9, order=2)), mode 'interp'.

    Computed with a cached linear operator instead of two savgol_filter calls (same values, a
    fraction of the overhead). Clips of fewer than 9 frames use the largest odd width that fits;
    below 3 frames a derivative is undefined and both are 0."""
    n_rows, n = x.shape
    width = min(DELTA_WIDTH, n if n % 2 else n - 1)
    if width < 3:
        return np.zeros_like(x), np.zeros_like(x)
    op = _delta_operator(width)
    half = width // 2
    out = np.empty((2, n_rows, n), dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(x, width, axis=1)  # (rows, n - width + 1, width)
    out[:, :, half:n - half] = np.moveaxis(windows @ op[:, half, :], -1, 0)
    out[:, :, :half] = np.einsum("rj,jio->ori", x[:, :width], op[:, :half, :])
    out[:, :, n - half:] = np.einsum("rj,jio->ori", x[:, n - width:], op[:, width - half:, :])
    return out[0], out[1]


def _chroma(power: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """librosa.feature.chroma_stft(S=power, tuning=0.0): max-normalised per frame, 0 for silence."""
    raw = _chroma_basis(cfg) @ power
    peak = raw.max(axis=0)
    peak[peak < np.finfo(np.float32).tiny] = 1.0
    raw /= peak
    return raw


def _contrast(mag: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """librosa.feature.spectral_contrast(S=mag, n_bands, fmin=contrast_fmin): peak/valley in dB."""
    bands = _contrast_bands(cfg)
    peak = np.empty((len(bands), mag.shape[1]), dtype=np.float32)
    valley = np.empty_like(peak)
    for k, (start, stop, q) in enumerate(bands):
        sub = mag[start:stop]
        if q == 1:
            valley[k] = sub.min(axis=0)
            peak[k] = sub.max(axis=0)
        else:
            srt = np.sort(sub, axis=0)
            valley[k] = srt[:q].mean(axis=0)
            peak[k] = srt[-q:].mean(axis=0)
    return _power_to_db(peak) - _power_to_db(valley)


def _zcr(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """librosa.feature.zero_crossing_rate(y, frame_length, hop_length, center=True) via a cumsum."""
    pad = frame_length // 2
    yp = np.pad(y, pad, mode="edge")
    neg = np.signbit(np.where(np.abs(yp) <= ZC_THRESHOLD, np.float32(0), yp))
    cross = np.empty(yp.size, dtype=np.int32)
    cross[0] = 0
    np.cumsum(neg[1:] != neg[:-1], out=cross[1:])
    starts = np.arange(1 + (yp.size - frame_length) // hop_length) * hop_length
    return (cross[starts + frame_length - 1] - cross[starts]).astype(np.float32) / np.float32(frame_length)


def _rms(power: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    return np.sqrt(_rms_weights(cfg.n_fft) @ power)


# --------------------------------------------------------------------------------------------------
# pooling


def _pool(x: np.ndarray, stats: tuple[str, ...]) -> np.ndarray:
    """(rows, frames) -> (rows, len(stats)) float64."""
    x = x.astype(np.float64)
    mean = x.mean(axis=1)
    out = []
    centred = m2 = None
    for stat in stats:
        if stat == "mean":
            out.append(mean)
        elif stat == "min":
            out.append(x.min(axis=1))
        elif stat == "max":
            out.append(x.max(axis=1))
        elif stat == "median":
            out.append(np.median(x, axis=1))
        else:
            if centred is None:
                centred = x - mean[:, None]
                m2 = np.mean(centred**2, axis=1)
            if stat == "std":
                out.append(np.sqrt(m2))
                continue
            # as scipy.stats: a row whose variance is at rounding level is constant -> 0
            flat = m2 <= (np.finfo(np.float64).resolution * 10 * np.maximum(np.abs(mean), 1e-30)) ** 2
            flat |= m2 == 0
            denom = np.where(flat, 1.0, m2)
            if stat == "skew":
                val = np.mean(centred**3, axis=1) / denom**1.5
            else:  # kurtosis (excess)
                val = np.mean(centred**4, axis=1) / denom**2 - 3.0
            out.append(np.where(flat, 0.0, val))
    return np.stack(out, axis=1)


def _pooled_from(y: np.ndarray, mag: np.ndarray, power: np.ndarray, logmel: np.ndarray,
                 cfg: FeatureConfig) -> np.ndarray:
    mfcc = _dct_matrix(cfg.n_mfcc, cfg.n_mels) @ logmel
    rows = [mfcc]
    if cfg.mfcc_deltas:
        rows += list(_deltas(mfcc))
    if cfg.n_chroma:
        rows.append(_chroma(power, cfg))
    rows.append(logmel)
    if cfg.n_contrast_bands:
        rows.append(_contrast(mag, cfg))
    zcr = _zcr(y, cfg.n_fft, cfg.hop_length)
    if zcr.size != mag.shape[1]:  # cannot happen: both use 1 + len // hop centred frames
        raise AssertionError(f"zcr has {zcr.size} frames, the STFT {mag.shape[1]}")
    rows += [zcr[None, :], _rms(power, cfg)[None, :]]
    return _pool(np.concatenate(rows, axis=0), cfg.stats).ravel().astype(np.float32)


def _analyse(audio: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    y = _as_signal(audio)
    mag = _magnitude(y, cfg)
    power = mag * mag
    logmel = _power_to_db(_mel_basis(cfg) @ power)
    return y, mag, power, logmel


def _sequence(logmel: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, int]:
    n = logmel.shape[1]
    frames = cfg.logmel_frames
    if n >= frames:
        start = (n - frames) // 2
        seq = logmel[:, start:start + frames].T
    else:
        seq = np.full((frames, logmel.shape[0]), logmel.min(), dtype=np.float32)
        seq[:n] = logmel.T
    return np.ascontiguousarray(seq, dtype=np.float32), n


# --------------------------------------------------------------------------------------------------
# public extractors


def extract_pooled_vector(audio: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Pooled features of one mono clip at cfg.sample_rate: 1-D float32, ordered as
    ``pooled_feature_names(cfg)``."""
    cfg = cfg or FeatureConfig()
    return fuse(_pooled_from(*_analyse(audio, cfg), cfg), audio, cfg)


def extract_pooled_batch(audios: Sequence[np.ndarray], cfg: FeatureConfig | None = None) -> list[np.ndarray]:
    """``extract_pooled_vector`` of several clips, with the encoder run over all of them together
    (``features.encoder.batch_size`` clips of one input length per call) instead of once per clip."""
    cfg = cfg or FeatureConfig()
    encoded: list[np.ndarray | None] = [None] * len(audios)
    if cfg.encoder is not None and len(audios):
        from ser.encoder import extract_encoder

        encoded = list(extract_encoder([np.asarray(a, dtype=np.float32) for a in audios], cfg.sample_rate,
                                       cfg.encoder))
    return [fuse(_pooled_from(*_analyse(a, cfg), cfg), a, cfg, encoded=e) for a, e in zip(audios, encoded)]


def extract_pooled(audio: np.ndarray, cfg: FeatureConfig | None = None) -> dict[str, float]:
    """``extract_pooled_vector`` as {name: value} (convenience; the vector form is cheaper)."""
    cfg = cfg or FeatureConfig()
    return dict(zip(_names(cfg), extract_pooled_vector(audio, cfg).tolist()))


def extract_logmel(audio: np.ndarray, cfg: FeatureConfig | None = None) -> tuple[np.ndarray, int]:
    """Log-mel dB sequence of one clip: ((logmel_frames, n_mels) float32, true frame count).

    Centre-cropped when longer than logmel_frames, end-padded with the clip's minimum when shorter;
    the count is the clip's own frames (1 + len // hop_length) before cropping or padding.
    """
    cfg = cfg or FeatureConfig()
    _, _, _, logmel = _analyse(audio, cfg)
    return _sequence(logmel, cfg)


def extract_all(audio: np.ndarray, cfg: FeatureConfig | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(pooled vector, log-mel sequence, true frame count) from one shared STFT."""
    cfg = cfg or FeatureConfig()
    y, mag, power, logmel = _analyse(audio, cfg)
    seq, n = _sequence(logmel, cfg)
    return fuse(_pooled_from(y, mag, power, logmel, cfg), audio, cfg), seq, n


def fuse(pooled: np.ndarray, audio: np.ndarray, cfg: FeatureConfig, egemaps: np.ndarray | None = None,
         encoded: np.ndarray | None = None) -> np.ndarray:
    """Append the openSMILE functionals and the encoder's pooled frames when `cfg` asks for them (fusion), in
    the one column order every path uses; either may be given already computed (a batch's encoder rows,
    eGeMAPS from another thread), else it is computed here from `audio`."""
    parts = [pooled]
    if cfg.opensmile:
        if egemaps is None:
            from ser.egemaps import extract_egemaps

            egemaps = extract_egemaps(np.asarray(audio, dtype=np.float32), cfg.sample_rate, cfg.opensmile)
        parts.append(egemaps)
    if cfg.encoder is not None:
        if encoded is None:
            from ser.encoder import extract_encoder

            encoded = extract_encoder([np.asarray(audio, dtype=np.float32)], cfg.sample_rate, cfg.encoder)[0]
        parts.append(encoded)
    return np.concatenate(parts).astype(np.float32) if len(parts) > 1 else pooled
