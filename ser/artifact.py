"""The model artefact: one folder holding the model, its scaler, the feature params it needs and a card.

Loading checks every file's hash and that the feature params match the caller's, and refuses with a
clear message otherwise. scikit-learn models are stored with skops and loaded with an explicit list of
trusted types (no pickle, no code run at load); Keras models are .keras files loaded in Keras's safe mode.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser import EMOTIONS
from ser.features import FeatureConfig
from ser.io import replace_path, sha256_file
from ser.speaker_norm import GroupNormalizer

ARTIFACT_FILE = "artifact.json"
SCALER = "scaler.npz"
CARD = "card.md"


class ArtifactError(ValueError):
    """An artefact folder that is incomplete, altered, or made for other feature params."""


@dataclass
class Artifact:
    """A trained model with everything prediction needs."""

    name: str
    model: Any  # ser.models.base.SerModel
    scaler: GroupNormalizer  # per-speaker normalisation config + the global statistics fitted on training rows
    features: FeatureConfig
    audio: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)  # data, protocol, metrics, timings for the card

    @property
    def input(self) -> str:
        return self.model.input

    def __getstate__(self) -> dict[str, Any]:
        # the shared ser.predictor.Predictor (a lock, caches) stays with this process
        return {k: v for k, v in self.__dict__.items() if k != "_predictor"}

    def save(self, folder: Path | str) -> Path:
        """Write the artefact atomically: build in a temp folder beside `folder`, then swap it in."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            self.model.save(tmp)
            np.savez(tmp / SCALER, **self.scaler.to_arrays())
            (tmp / CARD).write_text(model_card(self), encoding="utf-8")
            files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            meta = {
                "name": self.name, "kind": self.model.kind, "framework": self.model.framework,
                "input": self.model.input, "labels": list(EMOTIONS), "seed": self.model.seed,
                "model_params": self.model.params, "training": self.model.training,
                "feature_params": self.features.to_dict(), "feature_hash": self.features.config_hash(),
                "audio": self.audio, "normalize": self.scaler.config(), "info": self.info, "files": files,
            }
            (tmp / ARTIFACT_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
            replace_path(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder


def read_meta(folder: Path | str) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / ARTIFACT_FILE
    if not path.is_file():
        raise ArtifactError(f"{folder} is not a model artefact (no {ARTIFACT_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_artifact(folder: Path | str, expected_features: FeatureConfig | None = None) -> Artifact:
    """Load and verify an artefact; `expected_features` (from params.yaml) must match its feature params."""
    from ser.models import load_model

    folder = Path(folder)
    meta = read_meta(folder)
    for rel, digest in meta["files"].items():
        path = folder / rel
        if not path.is_file():
            raise ArtifactError(f"{folder}: {rel} is missing")
        if sha256_file(path) != digest:
            raise ArtifactError(f"{folder}: {rel} does not match its recorded hash (altered or corrupt)")
    if meta["labels"] != list(EMOTIONS):
        raise ArtifactError(f"{folder}: labels {meta['labels']} differ from this version's {list(EMOTIONS)}")
    features = FeatureConfig.from_params(meta["feature_params"])
    if features.config_hash() != meta["feature_hash"]:
        raise ArtifactError(f"{folder}: feature params do not match their recorded hash "
                            "(made by another version of ser's features)")
    if expected_features is not None and expected_features.config_hash() != meta["feature_hash"]:
        mine, theirs = expected_features.to_dict(), meta["feature_params"]
        diff = {k: (theirs.get(k), mine.get(k)) for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)}
        raise ArtifactError(f"{folder} was trained on other feature params (model vs params.yaml): {diff}; "
                            "retrain or predict with the model's own params")
    model = load_model(meta["kind"], folder, meta["model_params"])
    with np.load(folder / SCALER) as arrays:
        scaler = GroupNormalizer.from_arrays(dict(arrays), meta.get("normalize", {"mode": "none", "min_group_size": 10}))
    return Artifact(name=meta["name"], model=model, scaler=scaler, features=features,
                    audio=meta["audio"], info=meta["info"])


def model_card(artifact: Artifact) -> str:
    """A short Markdown card: what the model is, what it was trained on, how it scored."""
    info = artifact.info
    lines = [f"# Model card: {artifact.name}", "",
             f"- kind: `{artifact.model.kind}` ({artifact.model.framework}), input: {artifact.model.input}",
             f"- labels: {', '.join(EMOTIONS)}",
             f"- features: hash `{artifact.features.config_hash()}`, sample rate {artifact.features.sample_rate} Hz",
             f"- protocol: {info.get('protocol', 'speaker holdout')}; model chosen on validation speakers only",
             f"- normalisation: {artifact.scaler.mode} (groups under {artifact.scaler.min_group_size} clips use "
             "the training set's global statistics, stored in scaler.npz)"]
    data = info.get("data", {})
    if data:
        lines += ["", "## Data", "", "| split | speakers | utterances | corpora |", "|---|---|---|---|"]
        for split, d in data.items():
            lines.append(f"| {split} | {d.get('speakers')} | {d.get('utterances')} | {', '.join(d.get('corpora', []))} |")
    metrics = info.get("metrics", {})
    if metrics:
        lines += ["", "## Metrics (speakers never seen in training)", "", "| split | UAR | accuracy | macro-F1 |", "|---|---|---|---|"]
        for split, m in metrics.items():
            lines.append(f"| {split} | {m.get('uar')} | {m.get('accuracy')} | {m.get('macro_f1')} |")
    lines += ["", "scikit-learn models are stored with skops (loaded with an explicit trusted-types list, no pickle); "
              "Keras models as .keras (safe mode).", ""]
    return "\n".join(lines)
