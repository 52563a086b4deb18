"""Is there speech in this audio? A small energy + spectral VAD that says no to silence, tones and noise.

A model answers with a confident emotion for anything it is given, so prediction first asks whether
the input holds enough voice. A frame (32 ms at 16 kHz, 10 ms hop) counts as voice when

* its energy is within `range_db` of the loudest frame and above `floor_dbfs` (not silence or hiss),
* its spectrum between `band_hz` is not flat (spectral flatness below `max_flatness`: white or
  broadband noise has ~0.5, voiced speech well under 0.3), and
* it is not a tone: one narrow peak (+-2 bins) holding over `max_peak_share` of the band's power at
  the clip's most common peak frequency (a voice's strongest harmonic moves with pitch and vowel),
  and the clip is not steady (the median correlation of log spectra 200 ms apart is under 0.98: a
  hum, a chord or a held tone barely changes, a voice does), and its level is not steady (the
  standard deviation of frame energies above the floor is at least `min_envelope_db`: steady noise
  and hums stay within a dB or two, speech rises and falls with every syllable).

The input has speech when the voiced frames add up to `min_voice_s`. Sample rates under
`min_sample_rate` (what validation accepts) are refused before any of this: such a file is not a
recording of speech whatever it holds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser.audio import AudioError

MIN_SAMPLE_RATE = 8000


class NoSpeech(AudioError):
    """The audio holds no usable speech (or its sample rate is too low to); the message says why."""


@dataclass(frozen=True)
class SpeechGate:
    """Thresholds of the voice check (see the module docstring)."""

    min_voice_s: float = 0.2
    min_envelope_db: float = 2.0
    min_sample_rate: int = MIN_SAMPLE_RATE
    floor_dbfs: float = -60.0
    range_db: float = 40.0
    max_flatness: float = 0.45
    max_peak_share: float = 0.97
    band_hz: tuple[float, float] = (80.0, 4000.0)
    frame_s: float = 0.032
    hop_s: float = 0.010

    def __post_init__(self) -> None:
        if self.min_voice_s < 0 or self.min_sample_rate <= 0 or not 0 < self.max_flatness <= 1 \
                or not 0 < self.max_peak_share <= 1:
            raise ValueError(f"speech gate thresholds out of range: {self}")


@dataclass(frozen=True)
class SpeechReport:
    voiced_s: float
    duration_s: float
    speech: bool
    reason: str  # "" when speech was found

    def as_dict(self) -> dict[str, float | bool | str]:
        return {"voiced_s": round(self.voiced_s, 3), "duration_s": round(self.duration_s, 3),
                "speech": self.speech, "reason": self.reason}


def check_rate(sample_rate: int, gate: SpeechGate = SpeechGate()) -> None:
    """NoSpeech for a native sample rate under the floor (checked from the header, before decoding)."""
    if sample_rate < gate.min_sample_rate:
        raise NoSpeech(f"no speech detected: a sample rate of {sample_rate} Hz is under the "
                       f"{gate.min_sample_rate} Hz floor (too low to hold speech)")


def voiced_frames(audio: np.ndarray, sample_rate: int, gate: SpeechGate = SpeechGate()) -> np.ndarray:
    """A boolean per frame: voice or not (see the module docstring)."""
    x = np.asarray(audio, dtype=np.float32).ravel()
    n_fft = 1 << max(6, int(np.ceil(np.log2(gate.frame_s * sample_rate))))
    hop = max(1, int(round(gate.hop_s * sample_rate)))
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = power[:, (freqs >= gate.band_hz[0]) & (freqs <= min(gate.band_hz[1], sample_rate / 2))] + 1e-12
    energy_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
    loud = (energy_db > gate.floor_dbfs) & (energy_db > energy_db.max() - gate.range_db)
    flatness = np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)
    peak = np.argmax(band, axis=1)
    cumsum = np.concatenate([np.zeros((len(band), 1)), np.cumsum(band, axis=1)], axis=1)
    lo, hi = np.clip(peak - 2, 0, band.shape[1]), np.clip(peak + 3, 0, band.shape[1])
    rows = np.arange(len(band))
    share = (cumsum[rows, hi] - cumsum[rows, lo]) / cumsum[:, -1]
    candidate = loud & (flatness < gate.max_flatness)
    if not candidate.any():
        return candidate
    # a tone: one narrow peak holding the frame's power, at the same frequency frame after frame
    usual = np.bincount(peak[candidate]).argmax()
    tonal = (share > gate.max_peak_share) & (np.abs(peak - usual) <= 1)
    # spectra in dB within 30 dB of each frame's peak, so the numerical floor's jitter does not count as change
    db = 10 * np.log10(np.maximum(band, band.max(axis=1, keepdims=True) * 1e-3))
    return candidate & ~tonal & ~_steady(db, candidate, hop, sample_rate) & ~_flat_envelope(energy_db, gate)


def _flat_envelope(energy_db: np.ndarray, gate: SpeechGate) -> np.ndarray:
    """All frames when the level above the floor hardly moves (std under `min_envelope_db`): steady noise or a
    tone; speech rises and falls with every syllable."""
    heard = energy_db[energy_db > -100.0]  # all but digital silence: a quiet clip's pauses count
    flat = len(heard) >= 10 and float(np.std(heard)) < gate.min_envelope_db
    return np.full(len(energy_db), flat)


def _steady(db: np.ndarray, mask: np.ndarray, hop: int, sample_rate: int, lag_s: float = 0.2,
            min_corr: float = 0.98) -> np.ndarray:
    """All frames when the loud frames' spectra hardly change over `lag_s` (a hum, a chord, a held tone); a voice's do."""
    lag = max(1, int(round(lag_s * sample_rate / hop)))
    idx = np.flatnonzero(mask)
    pairs = idx[np.isin(idx + lag, idx)]
    if len(pairs) < 5:
        return np.zeros(len(mask), dtype=bool)
    a, b = db[pairs], db[pairs + lag]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    corr = np.sum(a * b, axis=1) / np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1) + 1e-12)
    return np.full(len(mask), float(np.median(corr)) > min_corr)


def detect_speech(audio: np.ndarray, sample_rate: int, gate: SpeechGate = SpeechGate()) -> SpeechReport:
    """How much voice `audio` holds and whether that is enough."""
    duration = len(audio) / sample_rate
    if sample_rate < gate.min_sample_rate:
        return SpeechReport(0.0, duration, False, f"sample rate {sample_rate} Hz is under {gate.min_sample_rate} Hz")
    if not len(audio) or not np.any(audio):
        return SpeechReport(0.0, duration, False, "silence")
    voiced = float(voiced_frames(audio, sample_rate, gate).sum()) * gate.hop_s
    voiced = min(voiced, duration)
    if voiced < gate.min_voice_s:
        return SpeechReport(voiced, duration, False,
                            f"{voiced:.2f} s of voice, under {gate.min_voice_s:g} s (silence, a tone or noise?)")
    return SpeechReport(voiced, duration, True, "")


def require_speech(audio: np.ndarray, sample_rate: int, gate: SpeechGate = SpeechGate()) -> SpeechReport:
    """The report, or NoSpeech("no speech detected: ...") when there is not enough voice."""
    report = detect_speech(audio, sample_rate, gate)
    if not report.speech:
        raise NoSpeech(f"no speech detected: {report.reason}")
    return report
