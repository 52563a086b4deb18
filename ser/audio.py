"""The one audio loader: every stage decodes, down-mixes, resamples and normalises audio here, the same way."""
from __future__ import annotations

import errno
import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Union, get_args

import numpy as np
import soundfile as sf

from ser.params import AudioParams

__all__ = ["AudioError", "AudioInfo", "AudioSource", "AUDIO_NORMALIZE_MODES", "decode", "load_audio", "probe", "sha1_file"]

AudioSource = Union[str, os.PathLike, BinaryIO]
AUDIO_NORMALIZE_MODES: tuple[str, ...] = get_args(AudioParams.model_fields["normalize"].annotation)
# Keyword defaults are params.yaml `audio:`'s (ser.params.AudioParams), but for `normalize`: a bare
# load leaves levels alone ("none"); the stages pass `audio.normalize` (default "peak") explicitly.
_D = AudioParams()

# A clip whose peak is at or below -120 dBFS is digital silence: normalising it would only amplify
# dither/noise into a loud signal (or divide by zero), so it is returned unscaled.
SILENCE_PEAK = 1e-6

_DECODE_ERRORS = (sf.SoundFileError, RuntimeError, OSError, EOFError)


class AudioError(Exception):
    """Audio that cannot be used (unreadable, empty, non-finite, too short); the message names the file."""


@dataclass(frozen=True)
class AudioInfo:
    """Header facts read without decoding the samples."""

    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    format: str   # container, e.g. "WAV", "FLAC"
    subtype: str  # sample encoding, e.g. "PCM_16", "FLOAT"
    # Bytes the WAV header's data chunk declares beyond the end of the file: > 0 for a cut-off copy
    # (libsndfile then reads only the frames present, which `frames` counts); 0 when complete or unknown.
    missing_bytes: int = 0


def _name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<in-memory audio>"


def _check_path(source: AudioSource, name: str) -> None:
    """Turn libsndfile's vague 'System error' for a missing, linked or unreadable path into a clear message."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if not path.exists():
                raise AudioError(f"{name}: {_dangling(path) if path.is_symlink() else 'file not found'}")
            if not path.is_file():
                raise AudioError(f"{name}: not a regular file")
            if path.stat().st_size == 0:
                raise AudioError(f"{name}: empty file (0 bytes), not audio")
        except OSError as err:  # e.g. a folder on the way that this user may not enter
            raise AudioError(f"{name}: cannot access ({err.strerror or err})") from err
        if not os.access(path, os.R_OK, effective_ids=os.access in os.supports_effective_ids):
            raise AudioError(f"{name}: permission denied (not readable by this user)")


def _dangling(link: Path) -> str:
    """Why a symbolic link leads nowhere: a loop, or a missing target."""
    try:
        link.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop (the link never reaches a file)"
    return f"broken symbolic link (its target {os.readlink(link)} does not exist)"


# libsndfile's header log line for a WAV whose data chunk claims more bytes than the file holds
_DATA_SHORT = re.compile(r"^data\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)


def _missing_bytes(log: str) -> int:
    """Data bytes a WAV header declares beyond the end of the file; 0 if none, or for the 'unknown
    length' placeholder (0x7FFFFFFF or more) that streaming writers put in the header."""
    match = _DATA_SHORT.search(log or "")
    if not match:
        return 0
    declared, present = int(match[1]), int(match[2])
    return 0 if declared >= 0x7FFFFFFF else max(declared - present, 0)


def probe(path: AudioSource) -> AudioInfo:
    """Read the header only (cheap) so ingest can fill manifest columns without decoding whole files."""
    name = _name(path)
    _check_path(path, name)
    start = path.tell() if hasattr(path, "tell") else None
    try:
        info = sf.info(path)
    except _DECODE_ERRORS as exc:
        raise AudioError(f"{name}: unreadable, not a supported audio file ({exc})") from exc
    finally:
        if start is not None:
            path.seek(start)  # leave a file-like where it was, ready for load_audio
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{name}: invalid header (sample rate {info.samplerate}, {info.channels} channels)")
    if info.frames <= 0:
        raise AudioError(f"{name}: empty audio (zero frames)")
    return AudioInfo(
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        duration_s=float(info.frames) / float(info.samplerate),
        format=str(info.format),
        subtype=str(info.subtype),
        missing_bytes=_missing_bytes(getattr(info, "extra_info", "")),
    )


def sha1_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-1 hex digest of the file's bytes, read in chunks: the key for duplicate detection."""
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_audio(
    path: AudioSource,
    sample_rate: int = _D.sample_rate,
    *,
    trim_db: float | None = _D.trim_db,
    normalize: Literal["none", "peak", "rms"] = "none",
    target_rms_dbfs: float = _D.target_rms_dbfs,
    min_duration_s: float = _D.min_duration_s,
) -> np.ndarray:
    """Decode `path` (a path or a binary file-like) to mono float32 at `sample_rate`.

    Steps: decode -> reject non-finite -> mean down-mix -> soxr HQ resample -> optional trim of
    leading/trailing silence quieter than `trim_db` below the peak -> `min_duration_s` check (after
    trimming) -> optional peak/RMS normalisation. A path is checked to exist before decoding.
    Raises AudioError for anything that makes the clip unusable, ValueError for bad arguments.
    """
    return _load(path, _name(path), sample_rate, trim_db=trim_db, normalize=normalize,
                 target_rms_dbfs=target_rms_dbfs, min_duration_s=min_duration_s)


def decode(
    data: bytes | bytearray | memoryview | BinaryIO,
    sample_rate: int = _D.sample_rate,
    *,
    name: str | None = None,
    trim_db: float | None = _D.trim_db,
    normalize: Literal["none", "peak", "rms"] = "none",
    target_rms_dbfs: float = _D.target_rms_dbfs,
    min_duration_s: float = _D.min_duration_s,
) -> np.ndarray:
    """`load_audio` for in-memory audio (e.g. an HTTP upload); `name` labels it in error messages."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) == 0:
            raise AudioError(f"{name or '<in-memory audio>'}: empty upload (0 bytes), not audio")
        source: BinaryIO = io.BytesIO(bytes(data))
    else:
        source = data
    return _load(source, name or _name(data), sample_rate, trim_db=trim_db, normalize=normalize,
                 target_rms_dbfs=target_rms_dbfs, min_duration_s=min_duration_s)


def _load(
    source: AudioSource,
    name: str,
    sample_rate: int,
    *,
    trim_db: float | None,
    normalize: str,
    target_rms_dbfs: float,
    min_duration_s: float,
) -> np.ndarray:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if normalize not in AUDIO_NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {AUDIO_NORMALIZE_MODES}, got {normalize!r}")
    if trim_db is not None and not trim_db > 0:
        raise ValueError(f"trim_db must be positive (dB below peak) or None, got {trim_db!r}")
    if min_duration_s < 0:
        raise ValueError(f"min_duration_s must be >= 0, got {min_duration_s!r}")

    _check_path(source, name)
    try:
        data, sr_in = sf.read(source, dtype="float32", always_2d=True)
    except _DECODE_ERRORS as exc:
        raise AudioError(f"{name}: unreadable, not a supported audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{name}: empty audio (zero frames)")
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise AudioError(f"{name}: {bad} non-finite samples (NaN or inf)")

    audio = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if sr_in != sample_rate:
        import soxr

        audio = soxr.resample(audio, sr_in, sample_rate, quality="HQ")
        if audio.size == 0:
            raise AudioError(f"{name}: too short to resample ({data.shape[0]} frames at {sr_in} Hz)")

    if trim_db is not None:
        import librosa

        audio, _ = librosa.effects.trim(audio, top_db=trim_db)
        if audio.size == 0:
            raise AudioError(f"{name}: nothing left after trimming silence (trim_db={trim_db})")

    if len(audio) / sample_rate + 1e-9 < min_duration_s:  # tolerance: 0.1 s * 16 kHz is not exact in floats
        raise AudioError(f"{name}: too short ({len(audio) / sample_rate:.3f} s < min_duration_s {min_duration_s} s)")

    audio = _normalise(audio, normalize, target_rms_dbfs)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _normalise(audio: np.ndarray, mode: str, target_rms_dbfs: float) -> np.ndarray:
    """Peak -> max |x| == 1; rms -> RMS at `target_rms_dbfs` (peaks may exceed 1, not clipped). Silence is left as is."""
    if mode == "none":
        return audio
    x = audio.astype(np.float64)
    peak = float(np.max(np.abs(x)))
    if peak <= SILENCE_PEAK:
        return audio
    if mode == "peak":
        return (x / peak).astype(np.float32)
    rms = float(np.sqrt(np.mean(x * x)))
    return (x * (10.0 ** (target_rms_dbfs / 20.0) / rms)).astype(np.float32)
