"""Predict emotions for audio files with a model artefact; a bad file is a row with an error, not a crash."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ser import EMOTIONS
from ser.artifact import Artifact
from ser.audio import AudioError, load_audio
from ser.corpora.base import AUDIO_EXTENSIONS
from ser.features import extract_all

PROB_COLUMNS = [f"prob_{e}" for e in EMOTIONS]


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, and every audio file under each folder (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
        else:
            out.append(p)
    return out


def features_for(artifact: Artifact, audio: np.ndarray) -> np.ndarray:
    """The model's input for one clip, standardised as in training: (1, d) or (1, frames, mels)."""
    pooled, logmel, _ = extract_all(audio, artifact.features)
    x = pooled[None, :] if artifact.input == "pooled" else logmel[None, :, :]
    return artifact.scaler.transform(x)


def predict_files(artifact: Artifact, paths: Iterable[Path | str],
                  on_file: Callable[[], None] | None = None) -> pd.DataFrame:
    """One row per file: path, emotion, confidence, prob_<emotion> x7, error (empty when fine)."""
    rows = []
    audio_params = artifact.audio
    for path in expand_paths(paths):
        row: dict[str, object] = {"path": str(path)}
        try:
            audio = load_audio(path, artifact.features.sample_rate, trim_db=audio_params.get("trim_db"),
                               normalize=audio_params.get("normalize", "none"),
                               target_rms_dbfs=audio_params.get("target_rms_dbfs", -23.0))
            proba = artifact.model.predict_proba(features_for(artifact, audio))[0]
            row.update({"emotion": EMOTIONS[int(proba.argmax())], "confidence": float(proba.max()),
                        **{c: float(p) for c, p in zip(PROB_COLUMNS, proba)}, "error": ""})
        except (AudioError, ValueError) as err:
            row.update({"emotion": None, "confidence": None, **dict.fromkeys(PROB_COLUMNS), "error": str(err)})
        rows.append(row)
        if on_file:
            on_file()
    return pd.DataFrame(rows, columns=["path", "emotion", "confidence", *PROB_COLUMNS, "error"])
