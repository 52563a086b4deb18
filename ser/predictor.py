"""One predictor per loaded artefact, shared by `ser predict`, `ser listen` and the HTTP API.

`Predictor.of(artifact)` gives the artefact's predictor (made once, then reused): the warm model,
the feature extractor's cached filter banks and openSMILE `Smile` (see ser.features, ser.egemaps),
the speech gate (ser.vad), and one lock around the scaler and the model (Keras/TF and some sklearn
models are not documented as thread-safe). Every path goes audio -> speech check -> raw features
-> scaler -> model -> the optional restriction to a set of emotions (`mask_proba`: the others get 0,
the rest is renormalised) here, so the three front ends cannot drift apart.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ser import EMOTIONS
from ser.artifact import Artifact
from ser.audio import AudioError, decode, load_audio, probe
from ser.features import FeatureConfig
from ser.params import parse_emotions
from ser.speaker_norm import RunningStats
from ser.vad import NoSpeech, SpeechGate, SpeechReport, check_rate, detect_speech

FAST_KERAS_BATCH = 256
_SIDE: list[ThreadPoolExecutor] = []
_SIDE_LOCK = threading.Lock()


def _side_thread() -> ThreadPoolExecutor:
    """One background thread per process for `fused_vector`'s openSMILE half (created on first use)."""
    with _SIDE_LOCK:
        if not _SIDE:
            _SIDE.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-egemaps"))
        return _SIDE[0]


def fused_vector(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """`extract_pooled_vector(audio, cfg)`, value for value, with eGeMAPS computed on a second thread while
    this one runs the librosa set and the encoder: the two are independent and both release the GIL
    (openSMILE through ctypes, CTranslate2 in C++), so one clip waits for the slower, not for their sum."""
    from ser.features import extract_pooled_vector, fuse

    if not (cfg.opensmile and cfg.encoder is not None):
        return extract_pooled_vector(audio, cfg)
    from ser.egemaps import extract_egemaps
    from ser.encoder import extract_encoder

    signal = np.asarray(audio, dtype=np.float32)
    egemaps = _side_thread().submit(extract_egemaps, signal, cfg.sample_rate, cfg.opensmile)
    pooled = extract_pooled_vector(audio, replace(cfg, opensmile=None, encoder=None))
    encoded = extract_encoder([signal], cfg.sample_rate, cfg.encoder)[0]
    return fuse(pooled, audio, cfg, egemaps=egemaps.result(), encoded=encoded)


def check_proba(proba: np.ndarray, n: int) -> np.ndarray:
    """`proba` as float64 (n, 7), or a ValueError naming the shape the model returned."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (n, len(EMOTIONS)) or not np.isfinite(proba).all():
        raise ValueError(f"the model returned probabilities of shape {proba.shape} "
                         f"(finite: {bool(np.isfinite(proba).all())}), expected ({n}, {len(EMOTIONS)})")
    return proba


def mask_proba(proba: np.ndarray, emotions: Iterable[str] | None) -> np.ndarray:
    """(n, 7) with the probabilities of emotions outside `emotions` set to 0 and each row renormalised to sum 1
    over the rest (a row with no mass on the set gets equal shares of it); `emotions` None: unchanged.
    All seven columns stay, so tables keep their shape."""
    proba = np.asarray(proba, dtype=np.float64)
    if emotions is None:
        return proba
    keep = np.isin(np.array(EMOTIONS), list(emotions))
    out = np.where(keep, proba, 0.0)
    total = out.sum(axis=-1, keepdims=True)
    uniform = np.broadcast_to(keep / keep.sum(), out.shape)
    return np.where(total > 0, out / np.where(total > 0, total, 1.0), uniform)


@dataclass(frozen=True)
class Featuriser:
    """An artefact's audio -> speech check -> raw features, without its model or scaler: small and
    picklable, so a process-pool worker can compute features without loading the model (or TensorFlow)."""

    features: FeatureConfig
    input: str  # "pooled" or "sequence", the model's input
    audio_options: dict[str, Any]
    gate: SpeechGate

    @property
    def sample_rate(self) -> int:
        return int(self.features.sample_rate)

    def load(self, path: Path | str) -> np.ndarray:
        """A file decoded as in training; NoSpeech for a sample rate under the floor (from the header)."""
        check_rate(probe(path).sample_rate, self.gate)
        return load_audio(path, self.sample_rate, **self.audio_options)

    def speech(self, audio: np.ndarray) -> SpeechReport:
        """How much voice `audio` (at the artefact's rate) holds; NoSpeech when not enough."""
        report = detect_speech(audio, self.sample_rate, self.gate)
        if not report.speech:
            raise NoSpeech(f"no speech detected: {report.reason}")
        return report

    def raw(self, audio: np.ndarray) -> np.ndarray:
        """The model's unscaled input for one clip: (d,) pooled or (frames, mels) log-mel; ValueError if not finite."""
        from ser.features import extract_logmel

        if self.input == "pooled":
            raw = fused_vector(audio, self.features)
        else:
            raw = extract_logmel(audio, self.features)[0]
        return _finite(raw)

    def raw_many(self, audios: list[np.ndarray]) -> list[np.ndarray | ValueError]:
        """`raw` of several clips, the encoder batched across them (ser.features.extract_pooled_batch); a clip
        that fails gets its ValueError in its place (the batch is redone clip by clip to tell which)."""
        from ser.features import extract_pooled_batch

        if self.input != "pooled" or len(audios) < 2:
            return [self._raw_or_error(a) for a in audios]
        try:
            rows = extract_pooled_batch(audios, self.features)
        except ValueError:
            return [self._raw_or_error(a) for a in audios]
        out: list[np.ndarray | ValueError] = []
        for row in rows:
            try:
                out.append(_finite(row))
            except ValueError as err:
                out.append(err)
        return out

    def _raw_or_error(self, audio: np.ndarray) -> np.ndarray | ValueError:
        try:
            return self.raw(audio)
        except ValueError as err:
            return err


def _finite(raw: np.ndarray) -> np.ndarray:
    if not np.isfinite(raw).all():
        raise ValueError("the audio gives non-finite features (extreme sample values)")
    return raw


class Predictor:
    """The loaded artefact with the one prediction path; thread-safe, synchronous."""

    def __init__(self, artifact: Artifact, gate: SpeechGate | None = None):
        from ser.features import limit_blas_threads

        # the feature matrices are tiny: a second BLAS thread only spins, taking the core fused_vector's
        # openSMILE thread needs (one 3-s clip: 99 -> 65 ms on 2 cores, bench/predict.py)
        limit_blas_threads(1)
        self.artifact = artifact
        self.gate = gate or SpeechGate()
        self.sample_rate = int(artifact.features.sample_rate)
        self.lock = threading.Lock()
        self.warm_s: float | None = None
        a = artifact.audio
        self.audio_options: dict[str, Any] = {"trim_db": a.get("trim_db"), "normalize": a.get("normalize", "none"),
                                              "target_rms_dbfs": a.get("target_rms_dbfs", -23.0)}

    @classmethod
    def of(cls, artifact: Artifact) -> Predictor:
        """The artefact's shared predictor (created on first use, warmed up once)."""
        found = artifact.__dict__.get("_predictor")
        if found is None:
            found = artifact.__dict__.setdefault("_predictor", cls(artifact))
        return found

    def featuriser(self) -> Featuriser:
        """This predictor's feature path (with its current speech gate), for a worker process."""
        return Featuriser(self.artifact.features, self.artifact.input, dict(self.audio_options), self.gate)

    # -- audio ----------------------------------------------------------------------------------
    def load(self, path: Path | str) -> np.ndarray:
        """A file decoded as in training; NoSpeech for a sample rate under the floor (from the header)."""
        return self.featuriser().load(path)

    def decode(self, data: bytes, name: str, min_duration_s: float = 0.0) -> np.ndarray:
        """In-memory audio (an upload) decoded as in training; the same rate floor."""
        import io

        check_rate(probe(io.BytesIO(data)).sample_rate, self.gate)
        return decode(data, self.sample_rate, name=name, min_duration_s=min_duration_s, **self.audio_options)

    def speech(self, audio: np.ndarray) -> SpeechReport:
        """How much voice `audio` (at the artefact's rate) holds; NoSpeech when not enough."""
        return self.featuriser().speech(audio)

    # -- features and model ------------------------------------------------------------------------
    def raw(self, audio: np.ndarray) -> np.ndarray:
        """The model's unscaled input for one clip: (d,) pooled or (frames, mels) log-mel; ValueError if not finite."""
        return self.featuriser().raw(audio)

    def model_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 7) for scaled inputs, under the lock: `predict_proba`, or Keras's `predict_on_batch` for small
        batches (`Model.predict` builds a data pipeline per call, ~40-50 ms on 2 cores; `predict_on_batch`
        runs the same compiled function in < 1 ms and gives the same numbers) when every class was seen."""
        model = self.artifact.model
        net = getattr(model, "model", None)
        seen = getattr(model, "classes_seen", None)
        with self.lock:
            if (model.framework == "keras" and net is not None and hasattr(net, "predict_on_batch")
                    and 0 < len(x) <= FAST_KERAS_BATCH and (seen is None or len(seen) == len(EMOTIONS))):
                return np.asarray(net.predict_on_batch(np.asarray(x, dtype=np.float32)), dtype=np.float64)
            return model.predict_proba(x)

    def proba(self, raw: np.ndarray, stats: RunningStats | None = None,
              emotions: tuple[str, ...] | None = None) -> tuple[np.ndarray, bool]:
        """(n, 7) for raw rows of one voice standardised by `stats` (its running statistics) once the model was
        trained per speaker and `stats` is large enough, else globally, restricted to `emotions` (`mask_proba`);
        and whether `stats` were used."""
        raw = np.asarray(raw)
        own = stats is not None and self.artifact.scaler.uses_groups(stats.clips)
        x = self.artifact.scaler.transform_with(raw, stats)
        return mask_proba(check_proba(self.model_proba(x), len(raw)), emotions), own

    def proba_group(self, raw: list[np.ndarray], key: str | None,
                    emotions: tuple[str, ...] | None = None) -> tuple[np.ndarray, bool]:
        """(n, 7) for one group's raw rows, standardised by the group's own statistics when the model was trained
        per speaker and the group is large enough (batch version of `proba`), restricted to `emotions`; and
        whether the group's statistics were used."""
        x = np.stack(raw)
        own = key is not None and self.artifact.scaler.uses_groups(len(raw))
        scaled = self.artifact.scaler.transform(x, np.full(len(raw), key, dtype=object) if own else None)
        out = np.concatenate([self.model_proba(scaled[i:i + FAST_KERAS_BATCH])
                              for i in range(0, len(scaled), FAST_KERAS_BATCH)])
        return mask_proba(check_proba(out, len(raw)), emotions), own

    def warmup(self) -> float:
        """One untimed prediction on quiet noise, once per predictor (lazy imports, filter-bank caches, the model's
        first call); a model that cannot predict fails here, not on a client. Seconds taken."""
        if self.warm_s is None:
            t0 = time.perf_counter()
            noise = np.random.default_rng(0).standard_normal(self.sample_rate).astype(np.float32) * 0.01
            self.proba(self.raw(noise)[None])
            self.warm_s = time.perf_counter() - t0
        return self.warm_s


__all__ = ["AudioError", "Featuriser", "NoSpeech", "Predictor", "check_proba", "mask_proba", "parse_emotions"]
