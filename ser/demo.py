"""A deterministic synthetic emotional-speech corpus, so a fresh clone can run the whole pipeline.

`write_demo_corpus(out)` writes `<out>/<speaker>/<emotion>/<speaker>_<emotion>_<nn>.wav` (the
generic folder-per-emotion layout) and `<out>/speakers.csv` (`speaker,gender,language`).

Each file is a short "utterance" of 2-5 syllables made by a source-filter model:

* source: a Rosenberg-like glottal pulse train (derivative of the glottal flow) on an F0 contour,
  with cycle-to-cycle jitter and shimmer, pulse-synchronous aspiration noise, and creak
  (period-alternating, low, irregular pulses) where the emotion asks for it;
* filter: a cascade of five 2-pole resonators whose vowel-like targets change per syllable
  (optionally gliding between two vowels), scaled by the speaker's vocal-tract length;
* consonants: band-passed fricative noise and stop bursts at syllable edges; pauses hold only a
  faint background noise.

Speakers differ in base F0 (male ~100-140 Hz, female ~180-240 Hz), formant scale, speaking rate,
breathiness, voice quality, expressiveness and loudness. Emotions change prosody *relative to the
speaker* (pitch level/range/contour, tempo, energy, spectral tilt, jitter, creak), and every
utterance draws its own intensity and random deviations, so classes overlap and a model that does
not normalise speakers is confounded: the corpus is learnable but not trivial.

Every file draws from its own generator seeded by (seed, speaker, emotion, utterance), so the
same arguments give byte-identical files whatever the order or run.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy import signal

from ser import EMOTIONS
from ser.params import DemoParams

_D = DemoParams()  # params.yaml `demo:` defaults

__all__ = ["write_demo_corpus", "MIN_SPEAKERS", "MIN_DURATION_S", "MAX_DURATION_S"]

MIN_SPEAKERS = 8
MIN_DURATION_S = 1.0
MAX_DURATION_S = 2.5
MARKER = ".ser-demo-corpus"  # marks a folder this module wrote, so it may be replaced

_SPEAKER_STREAM = 0  # SeedSequence spawn-key prefixes: speaker traits vs per-file draws
_FILE_STREAM = 1
_SENTENCE_STREAM = 2
N_SENTENCES = 4  # utterance nn reads sentence (nn - 1) % N_SENTENCES

# Vowel formant targets F1-F4 (Hz) of an adult male voice (Peterson & Barney-like averages).
_VOWELS = np.array(
    [
        [270, 2290, 3010, 3500],  # i
        [390, 1990, 2550, 3500],  # I
        [530, 1840, 2480, 3500],  # E
        [660, 1720, 2410, 3450],  # ae
        [730, 1090, 2440, 3400],  # a
        [570, 840, 2410, 3400],  # O
        [440, 1020, 2240, 3350],  # U
        [300, 870, 2240, 3350],  # u
        [640, 1190, 2390, 3400],  # V
        [490, 1350, 1690, 3300],  # 3r
    ],
    dtype=float,
)
_F5 = 4300.0
_BANDWIDTHS = np.array([70.0, 100.0, 140.0, 200.0, 260.0])

# Consonants: (kind, low Hz, high Hz, relative level).
_CONSONANTS = (
    ("fric", 3800.0, 7600.0, 0.30),  # s
    ("fric", 2000.0, 5200.0, 0.30),  # sh
    ("fric", 1200.0, 7000.0, 0.10),  # f
    ("fric", 500.0, 3200.0, 0.10),  # h
    ("stop", 2800.0, 6500.0, 0.45),  # t
    ("stop", 1300.0, 3200.0, 0.45),  # k
    ("stop", 300.0, 2500.0, 0.40),  # p
)


@dataclass(frozen=True)
class _Emotion:
    shift_st: float  # pitch level, semitones above the speaker's base
    range_st: float  # accent height / pitch range, semitones
    tempo: float  # syllable-rate multiplier
    level_db: float  # loudness offset
    oq: float  # glottal open quotient (high: breathy/soft, low: pressed)
    closing: float  # closing phase as a fraction of the open phase (short: brighter)
    lowpass: float  # extra one-pole low-pass coefficient (spectral tilt; negative: pre-emphasis)
    jitter: float  # cycle-to-cycle F0 perturbation (relative sd)
    shimmer: float  # cycle-to-cycle amplitude perturbation (relative sd)
    breath: float  # extra aspiration noise
    tremor_st: float  # 4-8 Hz pitch tremor depth, semitones
    creak: float  # probability a syllable ends in creak
    formant: float  # formant scale (smiling/open mouth raises, sad lowers)
    pause: float  # pause-length multiplier
    contour: str  # declarative | angry | bouncy | rise | tremulous | flat


_EMOTION_PROFILES: dict[str, _Emotion] = {
    # shift range tempo level  oq   closing lowpass jitter shimmer breath tremor creak formant pause contour
    "neutral": _Emotion(0.0, 1.5, 1.00, 0.0, 0.60, 0.35, 0.30, 0.006, 0.04, 0.00, 0.0, 0.05, 1.00, 1.0, "declarative"),
    "angry": _Emotion(3.5, 4.0, 1.15, 4.0, 0.42, 0.20, -0.25, 0.010, 0.06, -0.02, 0.0, 0.05, 1.05, 0.8, "angry"),
    "happy": _Emotion(3.5, 5.0, 1.10, 2.0, 0.55, 0.27, 0.05, 0.008, 0.05, 0.00, 0.0, 0.00, 1.10, 0.9, "bouncy"),
    "surprise": _Emotion(4.0, 6.0, 1.00, 2.0, 0.55, 0.30, 0.12, 0.008, 0.05, 0.04, 0.0, 0.00, 1.03, 1.0, "rise"),
    "fear": _Emotion(5.5, 2.5, 1.25, 0.5, 0.68, 0.35, 0.10, 0.030, 0.10, 0.16, 0.8, 0.00, 1.04, 0.7, "tremulous"),
    "sad": _Emotion(-2.0, 0.8, 0.75, -4.5, 0.78, 0.48, 0.70, 0.009, 0.06, 0.12, 0.15, 0.10, 0.95, 1.5, "flat"),
    "disgust": _Emotion(-2.5, 2.5, 0.82, -1.0, 0.55, 0.32, 0.42, 0.014, 0.07, 0.02, 0.0, 0.65, 0.98, 1.2, "declarative"),
}
assert set(_EMOTION_PROFILES) == set(EMOTIONS)


@dataclass(frozen=True)
class _Speaker:
    id: str
    gender: str
    f0: float  # base F0, Hz
    formant_scale: float  # vocal-tract length (female shorter: higher formants)
    rate: float  # syllable-rate multiplier
    breath: float  # aspiration noise level
    level_db: float  # habitual loudness
    oq: float  # open-quotient offset
    lowpass: float  # habitual spectral tilt
    jitter: float
    expressiveness: float  # scales every emotion effect
    range_scale: float  # scales pitch range


def _speaker(seed: int, index: int, n_digits: int) -> _Speaker:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SPEAKER_STREAM, index)))
    gender = "male" if index % 2 == 0 else "female"
    female = gender == "female"
    return _Speaker(
        id=f"spk{index + 1:0{n_digits}d}",
        gender=gender,
        f0=rng.uniform(180.0, 240.0) if female else rng.uniform(100.0, 140.0),
        formant_scale=rng.uniform(1.10, 1.22) if female else rng.uniform(0.93, 1.05),
        rate=rng.uniform(0.85, 1.18),
        breath=rng.uniform(0.03, 0.12) + (0.03 if female else 0.0),
        level_db=rng.uniform(-4.0, 4.0),
        oq=rng.uniform(-0.06, 0.06) + (0.04 if female else 0.0),
        lowpass=rng.uniform(-0.15, 0.25),
        jitter=rng.uniform(0.7, 1.4),
        expressiveness=rng.uniform(0.75, 1.15),
        range_scale=rng.uniform(0.7, 1.3),
    )


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return value


def _resonator_sos(freqs: np.ndarray, sr: int) -> np.ndarray:
    """Cascade of unity-DC-gain 2-pole resonators (Klatt) as an SOS array."""
    nyq_guard = 0.46 * sr
    freqs = np.minimum(freqs, nyq_guard - 50.0 * np.arange(len(freqs))[::-1])
    bw = _BANDWIDTHS[: len(freqs)]
    r = np.exp(-np.pi * bw / sr)
    theta = 2.0 * np.pi * freqs / sr
    a1 = -2.0 * r * np.cos(theta)
    a2 = r * r
    gain = 1.0 + a1 + a2
    sos = np.zeros((len(freqs), 6))
    sos[:, 0] = gain
    sos[:, 3] = 1.0
    sos[:, 4] = a1
    sos[:, 5] = a2
    return sos


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ramp_envelope(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n)
    attack, release = max(1, min(attack, n // 2)), max(1, min(release, n // 2))
    env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    env[n - release :] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 1) / release)
    return env


@dataclass(frozen=True)
class _Sentence:
    """A fixed "text": its syllables' vowels, glides, consonants, accents and phrase breaks.

    Like acted corpora (every speaker reads the same few sentences in every emotion), the text is
    shared across speakers and emotions, so it is not a cue to either.
    """

    vowels: np.ndarray  # vowel index per syllable
    glide: np.ndarray  # second vowel of a diphthong, or -1
    onset: np.ndarray  # consonant index, or -1
    coda: np.ndarray  # fricative index, or -1
    accented: np.ndarray  # bool
    pause: np.ndarray  # bool: a phrase break after the syllable
    length: np.ndarray  # intrinsic relative syllable length


def _sentence(seed: int, index: int) -> _Sentence:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SENTENCE_STREAM, index)))
    n_syl = int(rng.integers(2, 6))
    accented = rng.random(n_syl) < 0.45
    accented[int(rng.integers(0, n_syl))] = True
    return _Sentence(
        vowels=rng.integers(0, len(_VOWELS), n_syl),
        glide=np.where(rng.random(n_syl) < 0.35, rng.integers(0, len(_VOWELS), n_syl), -1),
        onset=np.where(rng.random(n_syl) < 0.7, rng.integers(0, len(_CONSONANTS), n_syl), -1),
        coda=np.where(rng.random(n_syl) < 0.25, rng.integers(0, 3, n_syl), -1),
        accented=accented,
        pause=rng.random(n_syl) < 0.45,
        length=rng.uniform(0.75, 1.3, n_syl),
    )


def _synthesize(spk: _Speaker, sentence: _Sentence, emotion: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    """One utterance as float64 in [-1, 1]."""
    prof = _EMOTION_PROFILES[emotion]
    # How strongly this utterance expresses its emotion: speaker trait times a per-utterance draw.
    k = spk.expressiveness * rng.uniform(0.75, 1.2)

    def toward(neutral_value: float, value: float) -> float:
        return neutral_value + k * (value - neutral_value)

    neu = _EMOTION_PROFILES["neutral"]
    tempo = toward(1.0, prof.tempo) * spk.rate * rng.uniform(0.88, 1.12)
    shift = k * prof.shift_st + rng.normal(0.0, 1.0)
    prange = max(0.3, toward(neu.range_st, prof.range_st) * spk.range_scale * rng.uniform(0.7, 1.3))
    oq = float(np.clip(toward(neu.oq, prof.oq) + spk.oq + rng.normal(0.0, 0.04), 0.35, 0.85))
    closing = float(np.clip(toward(neu.closing, prof.closing) + rng.normal(0.0, 0.03), 0.15, 0.55))
    lowpass = float(np.clip(toward(neu.lowpass, prof.lowpass) + spk.lowpass + rng.normal(0.0, 0.06), -0.5, 0.85))
    jitter = toward(neu.jitter, prof.jitter) * spk.jitter * rng.uniform(0.7, 1.3)
    shimmer = toward(neu.shimmer, prof.shimmer) * rng.uniform(0.7, 1.3)
    breath = max(0.0, spk.breath + k * prof.breath + rng.normal(0.0, 0.015))
    tremor = k * prof.tremor_st * rng.uniform(0.6, 1.3)
    fscale = spk.formant_scale * toward(1.0, prof.formant) * rng.uniform(0.97, 1.03)
    level_db = -24.0 + spk.level_db + k * prof.level_db + rng.uniform(-3.0, 3.0)

    # ---- syllable plan: the sentence's segments, timed by this speaker, emotion and utterance -----
    n_syl = len(sentence.vowels)
    accented = sentence.accented
    onset, coda = sentence.onset, sentence.coda
    nucleus = 0.17 * sentence.length * rng.uniform(0.85, 1.15, n_syl) * np.where(accented, 1.25, 1.0) / tempo
    nucleus[-1] *= 1.3  # final lengthening
    onset_dur = np.where(onset >= 0, rng.uniform(0.05, 0.11, n_syl) / tempo, 0.0)
    coda_dur = np.where(coda >= 0, rng.uniform(0.05, 0.10, n_syl) / tempo, 0.0)
    gaps = np.where(sentence.pause, rng.uniform(0.06, 0.20, n_syl) * prof.pause, rng.uniform(0.0, 0.025, n_syl))
    gaps[-1] = 0.0
    lead, trail = rng.uniform(0.05, 0.18), rng.uniform(0.08, 0.22)

    body = float(np.sum(onset_dur + nucleus + coda_dur + gaps))
    budget = MAX_DURATION_S - 0.04 - lead - trail
    if body > budget:
        squeeze = budget / body
        nucleus, onset_dur, coda_dur, gaps = nucleus * squeeze, onset_dur * squeeze, coda_dur * squeeze, gaps * squeeze
        body = budget
    total = lead + body + trail
    if total < MIN_DURATION_S + 0.04:
        extra = MIN_DURATION_S + 0.04 - total
        split = rng.uniform(0.2, 0.8)
        lead, trail = lead + extra * split, trail + extra * (1.0 - split)
        total = lead + body + trail

    n = int(round(total * sr))
    t = np.arange(n) / sr

    # Segment times (s): per syllable onset start, nucleus start/end, coda end.
    on_start = np.empty(n_syl)
    v_start = np.empty(n_syl)
    v_end = np.empty(n_syl)
    cursor = lead
    for i in range(n_syl):
        on_start[i] = cursor
        v_start[i] = cursor + onset_dur[i]
        v_end[i] = v_start[i] + nucleus[i]
        cursor = v_end[i] + coda_dur[i] + gaps[i]

    # ---- F0 contour (semitones re the speaker's base) ------------------------------------------
    tn = np.clip((t - v_start[0]) / max(v_end[-1] - v_start[0], 1e-3), 0.0, 1.0)  # 0..1 over speech
    st = np.full(n, shift)
    contour = prof.contour
    if contour == "flat":
        st -= 0.4 * prange * tn + 1.0 * prange * _smoothstep((tn - 0.75) / 0.25)
    elif contour == "angry":
        st -= 1.1 * prange * tn
    elif contour == "bouncy":
        st -= 0.3 * prange * tn
    elif contour == "rise":
        st -= 0.2 * prange * tn
    else:  # declarative, tremulous
        st -= 0.6 * prange * tn
    centres = 0.5 * (v_start + v_end)
    for i in range(n_syl):
        if contour == "bouncy":
            height = prange * rng.uniform(0.5, 1.1)
        elif contour == "angry":
            height = prange * (rng.uniform(0.8, 1.3) if i == 0 or accented[i] else rng.uniform(0.1, 0.4))
        elif contour == "flat":
            height = prange * rng.uniform(0.0, 0.5)
        else:
            height = prange * (rng.uniform(0.5, 1.0) if accented[i] else rng.uniform(0.0, 0.3))
        width = 0.38 * (v_end[i] - v_start[i])
        st += height * np.exp(-0.5 * ((t - centres[i]) / width) ** 2)
        if contour == "angry":  # each syllable falls
            st -= 0.35 * prange * np.clip((t - v_start[i]) / nucleus[i], 0.0, 1.0) * (t < v_end[i] + 0.05)
    last = n_syl - 1
    final_rise = 0.0
    if contour == "rise" or (contour == "tremulous" and rng.random() < 0.35) or rng.random() < 0.06:
        final_rise = prange * (rng.uniform(1.2, 2.0) if contour == "rise" else rng.uniform(0.5, 1.0))
    if final_rise:
        ramp = np.clip((t - v_start[last]) / max(nucleus[last], 1e-3), 0.0, 1.0)
        st += final_rise * ramp**1.6
    if tremor:
        st += tremor * np.sin(2.0 * np.pi * rng.uniform(4.5, 8.0) * t + rng.uniform(0, 2 * np.pi))
    # Slow random wander, 12 control points per second.
    knots = max(4, int(total * 12))
    st += np.interp(t, np.linspace(0.0, total, knots), rng.normal(0.0, 0.45, knots))

    # Creak: low, alternating, irregular pulses over the end of some syllables.
    creak = np.zeros(n)
    for i in range(n_syl):
        if rng.random() < k * prof.creak or (i == last and rng.random() < 0.5 * k * prof.creak):
            start = v_end[i] - nucleus[i] * rng.uniform(0.3, 0.6)
            creak = np.maximum(creak, _smoothstep((t - start) / 0.04) * (t < v_end[i] + 0.05))

    f0 = spk.f0 * 2.0 ** (st / 12.0) * (1.0 - 0.45 * creak)
    f0 = np.clip(f0, 45.0, 0.2 * sr)

    # ---- glottal source: jitter per period, shimmer, Rosenberg pulse, aspiration ---------------
    periods = np.floor(np.cumsum(f0) / sr).astype(np.int64)
    n_periods = int(periods[-1]) + 2
    jit_scale = jitter + 0.08 * creak
    f0j = f0 * (1.0 + jit_scale * np.clip(rng.standard_normal(n_periods), -3, 3)[periods])
    phase = np.cumsum(f0j) / sr
    periods = np.floor(phase).astype(np.int64)
    frac = phase - periods
    shim = 1.0 + shimmer * np.clip(rng.standard_normal(int(periods[-1]) + 1), -3, 3)[periods]
    shim *= 1.0 - 0.55 * creak * (periods % 2)
    t_open = oq * (1.0 - closing) * (1.0 - 0.3 * creak)
    t_close = oq * closing * (1.0 - 0.3 * creak)
    flow = np.where(
        frac < t_open,
        0.5 - 0.5 * np.cos(np.pi * frac / t_open),
        np.where(frac < t_open + t_close, np.cos(0.5 * np.pi * (frac - t_open) / t_close), 0.0),
    )
    flow *= shim
    source = np.diff(flow, prepend=0.0) * (sr / 16000.0)
    aspiration = np.diff(rng.standard_normal(n), prepend=0.0) * (0.35 + flow) * breath * 0.12
    source += aspiration
    if lowpass > 0:
        source = signal.lfilter([1.0 - lowpass], [1.0, -lowpass], source)
    elif lowpass < 0:
        source = signal.lfilter([1.0, lowpass], [1.0 + lowpass], source)

    # Voiced envelope per syllable (accented louder), then formant filtering per syllable.
    out = np.zeros(n)
    tail = int(0.035 * sr)
    amp_accent = np.where(accented, 1.0, rng.uniform(0.55, 0.85, n_syl))
    for i in range(n_syl):
        a, b = int(v_start[i] * sr), int(v_end[i] * sr)
        seg_len = b - a
        if seg_len < 8:
            continue
        env = _ramp_envelope(seg_len, int(rng.uniform(0.012, 0.03) * sr), int(rng.uniform(0.03, 0.06) * sr))
        excitation = np.zeros(seg_len + tail)
        excitation[:seg_len] = source[a:b] * env * amp_accent[i]
        fa = np.append(_VOWELS[sentence.vowels[i]], _F5) * fscale * rng.uniform(0.975, 1.025, 5)
        voiced = signal.sosfilt(_resonator_sos(fa, sr), excitation)
        if sentence.glide[i] >= 0:  # diphthong: glide toward a second vowel
            fb = np.append(_VOWELS[sentence.glide[i]], _F5) * fscale * rng.uniform(0.975, 1.025, 5)
            glide = _smoothstep((np.arange(seg_len + tail) / seg_len - 0.3) / 0.45)
            voiced = (1.0 - glide) * voiced + glide * signal.sosfilt(_resonator_sos(fb, sr), excitation)
        end = min(n, a + seg_len + tail)
        out[a:end] += voiced[: end - a]

    voiced_rms = float(np.sqrt(np.mean(out[int(v_start[0] * sr) : int(v_end[-1] * sr)] ** 2))) + 1e-12

    # ---- consonants ------------------------------------------------------------------------------
    def noise_burst(start_s: float, dur_s: float, kind: str, lo: float, hi: float, level: float) -> None:
        a = int(start_s * sr)
        m = min(int(dur_s * sr), n - a)
        if m < 16:
            return
        hi_c = min(hi * rng.uniform(0.95, 1.05), 0.45 * sr)
        lo_c = min(lo * rng.uniform(0.9, 1.1), 0.6 * hi_c)
        sos = signal.butter(2, [lo_c, hi_c], btype="bandpass", fs=sr, output="sos")
        burst = signal.sosfilt(sos, rng.standard_normal(m))
        burst /= np.sqrt(np.mean(burst**2)) + 1e-12
        if kind == "stop":  # silence (closure), sharp burst, then decaying aspiration
            closure = int(0.45 * m)
            env = np.zeros(m)
            decay = np.exp(-np.arange(m - closure) / (0.012 * sr))
            env[closure:] = decay
        else:
            env = np.hanning(m) ** 0.6
        out[a : a + m] += burst * env * level * voiced_rms * rng.uniform(0.6, 1.4)

    for i in range(n_syl):
        if onset[i] >= 0:
            kind, lo, hi, level = _CONSONANTS[int(onset[i])]
            noise_burst(on_start[i], onset_dur[i] + 0.01, kind, lo, hi, level)
        if coda[i] >= 0:
            kind, lo, hi, level = _CONSONANTS[int(coda[i])]
            noise_burst(v_end[i] - 0.01, coda_dur[i] + 0.01, kind, lo, hi, level * 0.8)

    # ---- level: RMS target per speaker/emotion/utterance, a peak cap, background noise ----------
    gain = 10.0 ** (level_db / 20.0) / voiced_rms
    out *= gain
    peak = float(np.max(np.abs(out)))
    cap = rng.uniform(0.80, 0.97)
    if peak > cap:
        out *= cap / peak
    noise_level = 10.0 ** (rng.uniform(-66.0, -54.0) / 20.0)
    out += noise_level * signal.lfilter([1.0], [1.0, -0.6], rng.standard_normal(n))
    return np.clip(out, -1.0, 32767.0 / 32768.0)


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished `tmp` folder to `out`, replacing an earlier demo corpus there."""
    if not out.exists() and not out.is_symlink():
        os.replace(tmp, out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, trash / "old")
    os.replace(tmp, out)
    shutil.rmtree(trash, ignore_errors=True)


def write_demo_corpus(
    out: Path,
    speakers: int = _D.speakers,
    utterances_per_emotion: int = _D.utterances_per_emotion,
    sample_rate: int = _D.sample_rate,
    seed: int = _D.seed,
) -> pd.DataFrame:
    """Write the synthetic corpus under `out` (replacing an earlier one) and list what was written.

    Layout: `<out>/<speaker>/<emotion>/<speaker>_<emotion>_<nn>.wav` (16-bit PCM mono) for speakers
    `spk01`.. with alternating genders (odd-numbered male), every emotion of `ser.EMOTIONS`, and
    `<out>/speakers.csv` (`speaker,gender,language`). The corpus is built in a temp folder beside
    `out` and renamed into place, so an interrupted run never leaves half a corpus. An existing `out`
    is replaced only if it is empty or was written by this function; anything else raises
    FileExistsError rather than deleting someone's data.

    Returns one row per file: `path` (POSIX, relative to `out`), `speaker`, `gender`, `emotion`.
    """
    speakers = _check_int("speakers", speakers, 1, 999)
    if speakers < MIN_SPEAKERS:
        raise ValueError(
            f"speakers must be at least {MIN_SPEAKERS} (got {speakers}): the speaker-independent "
            "train/val/test split needs several unseen speakers per part"
        )
    utterances_per_emotion = _check_int("utterances_per_emotion", utterances_per_emotion, 1, 999)
    sample_rate = _check_int("sample_rate", sample_rate, 8000, 96000)
    seed = _check_int("seed", seed, 0)
    out = Path(out).absolute()  # so `out.name`/`out.parent` mean something for "." too

    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise FileExistsError(f"demo corpus target {out} exists and is not a folder; not replacing it")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise FileExistsError(
            f"demo corpus target {out} is a non-empty folder not written by write_demo_corpus "
            f"(no {MARKER} file); remove it or choose another folder"
        )

    n_digits = max(2, len(str(speakers)))
    u_digits = max(2, len(str(utterances_per_emotion)))
    roster = [_speaker(seed, i, n_digits) for i in range(speakers)]
    sentences = [_sentence(seed, j) for j in range(N_SENTENCES)]

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the corpus is ordinary data
    rows: list[dict[str, str]] = []
    try:
        for s_idx, spk in enumerate(roster):
            for e_idx, emotion in enumerate(EMOTIONS):
                folder = tmp / spk.id / emotion
                folder.mkdir(parents=True)
                for u_idx in range(utterances_per_emotion):
                    seq = np.random.SeedSequence(seed, spawn_key=(_FILE_STREAM, s_idx, e_idx, u_idx))
                    audio = _synthesize(
                        spk, sentences[u_idx % N_SENTENCES], emotion, np.random.default_rng(seq), sample_rate
                    )
                    name = f"{spk.id}_{emotion}_{u_idx + 1:0{u_digits}d}.wav"
                    sf.write(folder / name, audio, sample_rate, subtype="PCM_16", format="WAV")
                    rows.append({"path": f"{spk.id}/{emotion}/{name}", "speaker": spk.id, "gender": spk.gender, "emotion": emotion})
        pd.DataFrame(
            {"speaker": [s.id for s in roster], "gender": [s.gender for s in roster], "language": "en"}
        ).to_csv(tmp / "speakers.csv", index=False, lineterminator="\n")
        args = {"speakers": speakers, "utterances_per_emotion": utterances_per_emotion, "sample_rate": sample_rate, "seed": seed}
        (tmp / MARKER).write_text(json.dumps(args, sort_keys=True) + "\n", encoding="utf-8")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return pd.DataFrame(rows, columns=["path", "speaker", "gender", "emotion"])
