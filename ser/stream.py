"""Streaming prediction over any audio source: a ring buffer, a sliding window and exponential smoothing.

A source is any iterable of mono float32 blocks at the predictor's sample rate (any block size):
`file_source` reads a file block by block (resampling on the fly), `mic_source` records from a
sound card through `sounddevice` (imported only there). `StreamPredictor.feed` takes one block and
returns the predictions whose window it completed; `StreamPredictor.run` drives a whole source.

Windows end at W, W + H, W + 2H, ... samples into the stream (W = window, H = hop), so a stream of
N >= W samples gives ``1 + (N - W) // H`` predictions; `flush` (called by `run` at the end) adds one
prediction over what was heard when the stream ended before the first window filled.

Smoothing: ``smoothed = smoothing * smoothed_before + (1 - smoothing) * current`` (0 = none), a convex
combination of probability vectors, so it stays a probability vector. Silent windows (RMS below
`silence_dbfs`) and windows without detectable voice (ser.vad: a tone, noise, hum) are reported with
`state` "silent" / "no_speech", get no emotion, and leave the smoothed history untouched.
"""
from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser import EMOTIONS
from ser.artifact import Artifact
from ser.speaker_norm import RunningStats

DEFAULTS = {"window_s": 3.0, "hop_s": 1.0, "smoothing": 0.6}


class MicError(RuntimeError):
    """No usable microphone: sounddevice or PortAudio missing, no input device, or the device refused."""


def stream_settings(params: dict[str, Any] | None, **overrides: Any) -> dict[str, float]:
    """window_s, hop_s, smoothing: CLI overrides (not None) > params.yaml `predict:` > built-in defaults."""
    block = (params or {}).get("predict") or {}
    out = {k: float(block.get(k, v)) for k, v in DEFAULTS.items()}
    out.update({k: float(v) for k, v in overrides.items() if v is not None and k in DEFAULTS})
    return out


class RingBuffer:
    """A fixed-capacity float32 buffer holding the latest `capacity` samples written."""

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError(f"ring buffer capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self._pos = 0      # next write index
        self.filled = 0    # valid samples (<= capacity)

    def write(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32).ravel()
        if len(x) >= self.capacity:
            self._data[:] = x[-self.capacity:]
            self._pos, self.filled = 0, self.capacity
            return
        end = self._pos + len(x)
        if end <= self.capacity:
            self._data[self._pos:end] = x
        else:
            k = self.capacity - self._pos
            self._data[self._pos:] = x[:k]
            self._data[:end - self.capacity] = x[k:]
        self._pos = end % self.capacity
        self.filled = min(self.capacity, self.filled + len(x))

    def latest(self, n: int | None = None) -> np.ndarray:
        """The last `n` (default: all valid) samples, oldest first, as a new array."""
        n = self.filled if n is None else min(int(n), self.filled)
        start = (self._pos - n) % self.capacity
        if start + n <= self.capacity:
            return self._data[start:start + n].copy()
        return np.concatenate([self._data[start:], self._data[:start + n - self.capacity]])


@dataclass
class StreamEvent:
    """One prediction: the window [start_s, end_s) of the stream and what the model made of it."""

    index: int
    start_s: float
    end_s: float
    proba: np.ndarray            # (7,) this window; zeros when silent
    smoothed: np.ndarray         # (7,) the exponentially smoothed history after this window
    silent: bool = False         # no voice heard, so no emotion: under silence_dbfs, or refused by the speech gate
    rms_dbfs: float = 0.0
    compute_s: float = 0.0       # time spent on this window (features + model)
    adapted: bool = False        # normalised by the stream's own running statistics (after the warm-up)
    speech: bool = True          # False: the speech gate refused the window (a tone, noise, hum; not run when quiet)

    @property
    def state(self) -> str:
        """`speech` (an emotion was predicted), `silent` (under silence_dbfs) or `no_speech` (no voice detected)."""
        return "speech" if not self.silent else "no_speech" if not self.speech else "silent"

    @property
    def emotion(self) -> str | None:
        return EMOTIONS[int(np.argmax(self.proba))] if self.state == "speech" else None

    @property
    def confidence(self) -> float | None:
        return float(np.max(self.proba)) if self.state == "speech" else None

    @property
    def smoothed_emotion(self) -> str | None:
        return EMOTIONS[int(np.argmax(self.smoothed))] if self.smoothed.sum() > 0 else None

    def as_row(self) -> dict[str, Any]:
        return {"window": self.index, "start_s": round(self.start_s, 6), "end_s": round(self.end_s, 6),
                "emotion": self.emotion, "confidence": self.confidence, "smoothed_emotion": self.smoothed_emotion,
                "state": self.state, "silent": self.silent, "rms_dbfs": round(self.rms_dbfs, 2), "adapted": self.adapted,
                **{f"prob_{e}": float(p) for e, p in zip(EMOTIONS, self.proba)},
                **{f"smooth_{e}": float(p) for e, p in zip(EMOTIONS, self.smoothed)}}


@dataclass
class StreamStats:
    audio_s: float = 0.0        # audio consumed
    compute_s: float = 0.0      # time in feed() (buffering + features + model)
    windows: int = 0
    silent: int = 0
    no_speech: int = 0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio time (< 1 keeps up with a live source)."""
        return self.compute_s / self.audio_s if self.audio_s > 0 else float("nan")


def _rms_dbfs(x: np.ndarray) -> float:
    if not len(x):
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


class StreamPredictor:
    """Predict over a sliding window of a live stream; feed blocks, get `StreamEvent`s back."""

    def __init__(self, artifact: Artifact, window_s: float = 3.0, hop_s: float = 1.0, smoothing: float = 0.6,
                 silence_dbfs: float | None = None, adapt: bool = True, emotions: Any = None):
        """`adapt`: for a model trained with per-speaker normalisation, standardise by the stream's own running
        statistics once `normalize.min_group_size` voiced windows have been heard (the warm-up); before
        that, and with `adapt=False`, by the training set's global statistics. `emotions` (names, or
        "angry,happy"): predict only these (ser.predictor.mask_proba); ValueError for an unknown name."""
        if not window_s > 0 or not hop_s > 0:
            raise ValueError(f"window and hop must be positive seconds, got window {window_s}, hop {hop_s}")
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        from ser.params import parse_emotions
        from ser.predictor import Predictor

        self.emotions = parse_emotions(emotions)
        self.artifact = artifact
        self.predictor = Predictor.of(artifact)  # the same warm model, caches and lock as predict and serve
        self.sample_rate = int(artifact.features.sample_rate)
        self.window = max(1, int(round(window_s * self.sample_rate)))
        self.hop = max(1, int(round(hop_s * self.sample_rate)))
        self.smoothing = float(smoothing)
        self.silence_dbfs = silence_dbfs
        self.adapt = bool(adapt)
        self.reset()

    def reset(self) -> None:
        self.ring = RingBuffer(self.window)
        self.received = 0                  # samples fed so far
        self.next_end = self.window        # sample count at which the next window completes
        self.smoothed = np.zeros(len(EMOTIONS))
        self.events: list[StreamEvent] = []
        self.stats = StreamStats()
        self.voice = RunningStats()        # raw-feature statistics of the voiced windows heard so far

    def warmup(self) -> float:
        """The shared predictor's one untimed warm-up prediction (lazy imports, filter-bank caches, the model's first
        call); seconds it took (when this process first ran it)."""
        return self.predictor.warmup()

    @property
    def window_s(self) -> float:
        return self.window / self.sample_rate

    @property
    def hop_s(self) -> float:
        return self.hop / self.sample_rate

    def _predict(self, audio: np.ndarray, end: int) -> StreamEvent:
        from ser.predict import normalise_window
        from ser.vad import detect_speech

        t0 = time.perf_counter()
        level = _rms_dbfs(audio)
        quiet = self.silence_dbfs is not None and level < self.silence_dbfs
        speech = quiet or detect_speech(audio, self.sample_rate, self.predictor.gate).speech
        silent = quiet or not speech
        adapted = False
        if silent:
            proba = np.zeros(len(EMOTIONS))
        else:
            raw = self.predictor.raw(normalise_window(self.artifact, audio))[None]
            if self.adapt:
                self.voice.update(raw)
            p, adapted = self.predictor.proba(raw, self.voice if self.adapt else None, self.emotions)
            proba = p[0]
            if self.smoothed.sum() == 0:
                self.smoothed = proba.copy()  # the first window starts the history
            else:
                self.smoothed = self.smoothing * self.smoothed + (1 - self.smoothing) * proba
        event = StreamEvent(index=len(self.events), start_s=(end - len(audio)) / self.sample_rate,
                            end_s=end / self.sample_rate, proba=proba, smoothed=self.smoothed.copy(),
                            silent=silent, rms_dbfs=level if math.isfinite(level) else -200.0,
                            compute_s=time.perf_counter() - t0, adapted=adapted, speech=speech)
        self.events.append(event)
        self.stats.windows += 1
        self.stats.silent += int(silent)
        self.stats.no_speech += int(not speech)
        self.stats.latencies_s.append(event.compute_s)
        return event

    def feed(self, block: np.ndarray) -> list[StreamEvent]:
        """Add one block of samples; return the predictions for every window it completed."""
        t0 = time.perf_counter()
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 2:  # (frames, channels) from a sound card
            block = block.mean(axis=1, dtype=np.float32)
        block = block.ravel()
        if not np.isfinite(block).all():
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
        out = []
        while len(block):
            take = min(len(block), self.next_end - self.received)
            self.ring.write(block[:take])
            self.received += take
            block = block[take:]
            if self.received == self.next_end:
                out.append(self._predict(self.ring.latest(self.window), self.received))
                self.next_end += self.hop
        self.stats.audio_s = self.received / self.sample_rate
        self.stats.compute_s += time.perf_counter() - t0
        return out

    def flush(self, min_s: float = 0.1) -> list[StreamEvent]:
        """At the end of a stream shorter than one window: one prediction over what was heard (if >= min_s)."""
        if self.events or self.received < max(1, int(min_s * self.sample_rate)):
            return []
        t0 = time.perf_counter()
        event = self._predict(self.ring.latest(), self.received)
        self.stats.compute_s += time.perf_counter() - t0
        return [event]

    def run(self, source: Iterable[np.ndarray], on_event: Callable[[StreamEvent], Any] | None = None,
            max_s: float | None = None) -> StreamStats:
        """Feed every block of `source` (stopping after `max_s` seconds of audio if given), then flush."""
        for block in source:
            for event in self.feed(block):
                if on_event:
                    on_event(event)
            if max_s is not None and self.received >= max_s * self.sample_rate:
                break
        for event in self.flush():
            if on_event:
                on_event(event)
        return self.stats

    def expected_windows(self, n_samples: int) -> int:
        """Predictions `run` gives for a stream of `n_samples` (see the module docstring)."""
        if n_samples >= self.window:
            return 1 + (n_samples - self.window) // self.hop
        return 1 if n_samples >= max(1, int(0.1 * self.sample_rate)) else 0


# -- sources ------------------------------------------------------------------------------------------


def file_source(path: Path | str, block_s: float = 0.1, sample_rate: int = 16000,
                realtime: bool = False) -> Iterator[np.ndarray]:
    """Mono float32 blocks of about `block_s` seconds from an audio file, resampled to `sample_rate`.

    The file is read block by block (soundfile) and resampled with a streaming soxr resampler, so a
    long recording is never held in memory. `realtime=True` paces the blocks like a live source.
    Raises `ser.audio.AudioError` for a file that cannot be read.
    """
    import soundfile as sf

    from ser.audio import AudioError, probe

    from ser.vad import check_rate

    info = probe(path)  # clear AudioError for a missing, empty or unreadable file
    check_rate(info.sample_rate)  # NoSpeech (an AudioError) under the 8 kHz floor
    if block_s <= 0:
        raise ValueError(f"block_s must be positive, got {block_s}")
    frames = max(1, int(round(block_s * info.sample_rate)))
    resampler = None
    if info.sample_rate != sample_rate:
        import soxr

        resampler = soxr.ResampleStream(info.sample_rate, sample_rate, 1, dtype="float32", quality="HQ")
    start = time.perf_counter()
    sent = 0
    try:
        blocks = sf.blocks(str(path), blocksize=frames, dtype="float32", always_2d=True)
        for data in blocks:
            y = data.mean(axis=1, dtype=np.float32)
            if resampler is not None:
                y = resampler.resample_chunk(y, last=False)
            if len(y):
                if realtime:
                    time.sleep(max(0.0, sent / sample_rate - (time.perf_counter() - start)))
                sent += len(y)
                yield y
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                yield tail
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable while streaming ({exc})") from exc


def import_sounddevice() -> Any:
    """`sounddevice`, or a MicError saying what to install."""
    try:
        import sounddevice
    except ImportError as exc:
        raise MicError("the microphone needs the `sounddevice` package: pip install sounddevice") from exc
    except OSError as exc:  # sounddevice imports, but libportaudio is not on the system
        raise MicError(f"PortAudio is not installed ({exc}); install it (Debian/Ubuntu: apt install "
                       "libportaudio2, macOS: brew install portaudio) or use --file") from exc
    return sounddevice


def input_devices(sd: Any | None = None) -> list[dict[str, Any]]:
    """Sound-card inputs: index, name, channels, default sample rate. Empty when there is none."""
    sd = sd or import_sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as exc:  # PortAudioError: host API trouble
        raise MicError(f"cannot list audio devices: {exc}") from exc
    return [{"index": i, "name": d["name"], "channels": int(d["max_input_channels"]),
             "default_samplerate": float(d["default_samplerate"])}
            for i, d in enumerate(devices) if int(d.get("max_input_channels", 0)) > 0]


def _pick_device(sd: Any, device: int | str | None) -> dict[str, Any]:
    inputs = input_devices(sd)
    if not inputs:
        raise MicError("no audio input device found (no microphone, or none this process may use); "
                       "try `ser listen --file AUDIO` to run on a recording")
    if device is None:
        try:
            default = sd.default.device[0] if isinstance(sd.default.device, (list, tuple)) else sd.default.device
        except Exception:
            default = None
        return next((d for d in inputs if d["index"] == default), inputs[0])
    if isinstance(device, str) and device.strip().lstrip("-").isdigit():
        device = int(device)
    if isinstance(device, int):
        found = [d for d in inputs if d["index"] == device]
    else:
        found = [d for d in inputs if str(device).lower() in d["name"].lower()]
    if not found:
        listing = "; ".join(f"{d['index']}: {d['name']}" for d in inputs)
        raise MicError(f"no input device matches {device!r}; inputs: {listing}")
    return found[0]


def mic_source(device: int | str | None = None, sample_rate: int = 16000, block_s: float = 0.1,
               max_queue: int = 200, sd: Any | None = None) -> Iterator[np.ndarray]:
    """Mono float32 blocks from a sound-card input at `sample_rate` (resampled when the card refuses it).

    `device` is an index or part of a name (None: the default input). Blocks are handed over from
    PortAudio's callback thread through a queue of `max_queue` blocks; if the consumer falls behind
    that much, new audio is dropped (counted in `mic_source.dropped`, reset per call). Raises MicError
    when there is no usable input.
    """
    sd = sd or import_sounddevice()
    mic_source.dropped = 0  # type: ignore[attr-defined]
    dev = _pick_device(sd, device)
    q: queue.Queue[np.ndarray] = queue.Queue(maxsize=max_queue)
    status_flags: list[str] = []

    def callback(indata, frames, time_info, status):  # PortAudio's thread: copy and hand over only
        if status:
            status_flags.append(str(status))
        try:
            q.put_nowait(indata[:, 0].copy() if indata.ndim == 2 else indata.copy())
        except queue.Full:
            mic_source.dropped += 1  # type: ignore[attr-defined]

    stream = None
    device_sr = sample_rate
    for rate in dict.fromkeys([sample_rate, int(dev["default_samplerate"])]):
        try:
            stream = sd.InputStream(device=dev["index"], channels=1, samplerate=rate, dtype="float32",
                                    blocksize=max(1, int(block_s * rate)), callback=callback)
            device_sr = rate
            break
        except Exception as exc:  # sd.PortAudioError: rate or device refused
            last = exc
    if stream is None:
        raise MicError(f"cannot open input device {dev['index']} ({dev['name']}): {last}")
    resampler = None
    if device_sr != sample_rate:
        import soxr

        resampler = soxr.ResampleStream(device_sr, sample_rate, 1, dtype="float32", quality="HQ")
    try:
        with stream:
            while True:
                try:
                    block = q.get(timeout=2.0)
                except queue.Empty:
                    raise MicError(f"input device {dev['name']} delivered no audio for 2 s") from None
                yield resampler.resample_chunk(block) if resampler is not None else block
    except Exception as exc:
        if isinstance(exc, MicError) or type(exc).__name__ != "PortAudioError":
            raise
        raise MicError(f"audio input failed: {exc}") from exc


mic_source.dropped = 0  # type: ignore[attr-defined]
