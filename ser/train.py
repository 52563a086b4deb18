"""Train one model on speaker-independent splits and score it on speakers it never heard."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import EMOTIONS
from ser.artifact import Artifact
from ser.feature_table import FeatureSettings, check_feature_hash, manifest_features
from ser.features import FeatureConfig, pooled_feature_names
from ser.params import ModelEntry, Settings
from ser.speaker_norm import GroupNormalizer

LABEL_INDEX = {e: i for i, e in enumerate(EMOTIONS)}


@dataclass
class Table:
    """Rows of one input kind: x is (n, d) pooled or (n, frames, mels) log-mel, y class indices."""

    x: np.ndarray
    y: np.ndarray
    meta: pd.DataFrame  # utt_id, corpus, speaker, split, fold, augmented, source

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray | pd.Series) -> Table:
        mask = np.asarray(mask, dtype=bool)
        return Table(self.x[mask], self.y[mask], self.meta[mask].reset_index(drop=True))


def load_table(features_dir: Path | str, input_kind: str, cfg: FeatureConfig, manifest: pd.DataFrame) -> Table:
    """The pooled or log-mel rows of exactly the manifest's utterances as arrays (see `manifest_features`);
    refuses parts extracted with other feature params than `cfg`."""
    corpora = sorted(manifest["corpus"].astype(str).unique())
    check_feature_hash(Path(features_dir) / input_kind, cfg, corpora=corpora)
    df = manifest_features(Path(features_dir) / input_kind, manifest)
    if input_kind == "pooled":
        x = df[pooled_feature_names(cfg)].to_numpy(np.float32)
    else:
        x = np.stack(df["logmel"].to_numpy()).astype(np.float32).reshape(len(df), cfg.logmel_frames, cfg.n_mels)
    y = df["emotion"].map(LABEL_INDEX).to_numpy(np.int64)
    meta = df[["utt_id", "corpus", "speaker", "split", "fold", "augmented", "source"]].reset_index(drop=True)
    return Table(x, y, meta)


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-row weights so every class present counts equally (sklearn's 'balanced' rule)."""
    classes, counts = np.unique(y, return_counts=True)
    per_class = {c: len(y) / (len(classes) * n) for c, n in zip(classes, counts)}
    return np.array([per_class[c] for c in y], dtype=np.float32)


def describe(table: Table) -> dict[str, Any]:
    originals = table.meta[~table.meta["augmented"]]
    return {"speakers": int(originals["speaker"].nunique()), "utterances": len(originals),
            "augmented_rows": int(table.meta["augmented"].sum()), "corpora": sorted(originals["corpus"].unique())}


def normalizer(params: Settings) -> GroupNormalizer:
    """The speaker normaliser params.yaml asks for (`normalize: {mode, min_group_size}`)."""
    return GroupNormalizer(mode=params.normalize.mode, min_group_size=params.normalize.min_group_size)


def _spec(spec: ModelEntry | dict[str, Any]) -> dict[str, Any]:
    """A `models:` entry as the dict ser.models.build_model takes (kind plus hyper-parameters)."""
    return spec.model_dump() if isinstance(spec, ModelEntry) else dict(spec)


def scale(norm: GroupNormalizer, table: Table) -> np.ndarray:
    """Normalise a table by its speakers; group statistics come from original clips only."""
    return norm.transform(table.x, table.meta["speaker"].to_numpy(), ~table.meta["augmented"].to_numpy())


def fit_and_score(spec: dict[str, Any], training: dict[str, Any], seed: int, train: Table, val: Table | None,
                  tests: dict[str, Table], norm: GroupNormalizer | None = None
                  ) -> tuple[Any, GroupNormalizer, dict[str, Any], dict[str, list[float]], dict[str, float]]:
    """Fit the normaliser and model on `train` (val only for early stopping), score each table in `tests`."""
    from ser.evaluate import evaluate
    from ser.models import build_model

    model = build_model(spec, seed=seed, training=training)
    scaler = (norm or GroupNormalizer()).fit(train.x, train.meta["speaker"].to_numpy(), ~train.meta["augmented"].to_numpy())
    x_val = scale(scaler, val) if val is not None and len(val) else None
    y_val = val.y if x_val is not None else None
    start = time.perf_counter()
    history = model.fit(scale(scaler, train), train.y, x_val, y_val, sample_weight=balanced_weights(train.y))
    timings = {"train_s": round(time.perf_counter() - start, 3)}
    scores = {}
    for name, table in tests.items():
        if not len(table):
            continue
        start = time.perf_counter()
        proba = model.predict_proba(scale(scaler, table))
        elapsed = time.perf_counter() - start
        scores[name] = evaluate(table.y, proba, groups={"corpus": table.meta["corpus"].to_numpy()})
        scores[name]["predictions"] = pd.DataFrame({
            "utt_id": table.meta["utt_id"], "actual": [EMOTIONS[i] for i in table.y],
            "predicted": [EMOTIONS[i] for i in proba.argmax(axis=1)]})
        if name == "test":
            timings["predict_ms_per_clip"] = round(1000 * elapsed / len(table), 4)
    return model, scaler, scores, history, timings


def subsample(train: Table, fraction: float, seed: int) -> Table:
    """Keep `fraction` of the training clips per emotion (at least one each), with their augmented copies."""
    if not 0 < fraction <= 1:
        raise ValueError(f"train.fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return train
    rng = np.random.default_rng(seed)
    originals = train.meta[~train.meta["augmented"]].assign(y=train.y[~train.meta["augmented"].to_numpy()])
    keep = []
    for _, group in originals.groupby("y", sort=True):
        n = max(1, int(round(fraction * len(group))))
        keep += rng.choice(group["utt_id"].to_numpy(), size=n, replace=False).tolist()
    return train.subset(train.meta["source"].isin(keep))


def holdout(table: Table) -> tuple[Table, Table, Table]:
    """Train (with its augmented copies), validation and test originals, by the manifest's speaker split."""
    split, aug = table.meta["split"].to_numpy(), table.meta["augmented"].to_numpy()
    return (table.subset(split == "train"), table.subset((split == "val") & ~aug), table.subset((split == "test") & ~aug))


def train_holdout(name: str, spec: ModelEntry | dict[str, Any], params: Settings | dict[str, Any],
                  features_dir: Path | str, manifest: pd.DataFrame
                  ) -> tuple[Artifact, dict[str, Any], dict[str, list[float]]]:
    """Train `name` on the train speakers, early-stop on val speakers, score val and test."""
    params, spec = Settings.coerce(params), _spec(spec)
    settings = FeatureSettings.from_params(params)
    from ser.models import model_input

    table = load_table(features_dir, model_input(spec["kind"]), settings.features, manifest)
    train, val, test = holdout(table)
    train = subsample(train, params.train.fraction, params.seed)
    if not len(train) or not len(test):
        raise ValueError("the feature table has no train or no test rows: check split.ratios and the manifest")
    model, scaler, scores, history, timings = fit_and_score(
        spec, params.train.keras.model_dump(), params.seed, train, val,
        {"val": val, "test": test}, norm=normalizer(params))
    info = {"protocol": "speaker holdout" if params.split.protocol == "speaker"
            else f"cross-corpus (test corpora: {params.split.test_corpora})",
            "data": {"train": describe(train), "val": describe(val), "test": describe(test)},
            "metrics": {k: {m: v[m] for m in ("uar", "accuracy", "macro_f1", "by_corpus") if m in v}
                        for k, v in scores.items()},
            "timings": timings}
    artifact = Artifact(name=name, model=model, scaler=scaler, features=settings.features,
                        audio=settings.audio, info=info)
    predictions = {k: v.pop("predictions") for k, v in scores.items()}
    return artifact, {"scores": scores, "timings": timings, "data": info["data"], "predictions": predictions,
                      "stopping": model.stopping()}, history


def train_loso(spec: ModelEntry | dict[str, Any], params: Settings | dict[str, Any], features_dir: Path | str,
               manifest: pd.DataFrame,
               on_fold: Any = None) -> dict[str, Any]:
    """Leave-one-speaker-out: each speaker is tested by a model trained on all the others.

    Keras models early-stop on the next speaker in fold order, which is then left out of training too.
    """
    from ser.evaluate import summarize_folds
    from ser.models import model_framework, model_input

    params, spec = Settings.coerce(params), _spec(spec)
    settings = FeatureSettings.from_params(params)
    table = load_table(features_dir, model_input(spec["kind"]), settings.features, manifest)
    speakers = sorted(table.meta["speaker"].unique())
    source_speaker = table.meta["speaker"].to_numpy()
    aug = table.meta["augmented"].to_numpy()
    keras = model_framework(spec["kind"]) == "keras"
    folds = []
    for i, speaker in enumerate(speakers):
        test = table.subset((source_speaker == speaker) & ~aug)
        val_speaker = speakers[(i + 1) % len(speakers)] if keras else None
        val = table.subset((source_speaker == val_speaker) & ~aug) if keras else None
        train = table.subset((source_speaker != speaker) & (source_speaker != val_speaker))
        _, _, scores, _, _ = fit_and_score(spec, params.train.keras.model_dump(), params.seed, train, val, {"test": test},
                                          norm=normalizer(params))
        scores["test"].pop("predictions")
        folds.append({**scores["test"], "fold": i, "speaker": speaker,
                      "corpus": str(test.meta["corpus"].iloc[0])})
        if on_fold:
            on_fold(i + 1, len(speakers), speaker, scores["test"]["uar"])
    summary = summarize_folds(folds)
    by_corpus = pd.DataFrame([{"corpus": f["corpus"], "uar": f["uar"]} for f in folds]).groupby("corpus")["uar"].mean()
    summary["uar_by_corpus"] = {k: round(float(v), 4) for k, v in by_corpus.items()}
    # every corpus counts once, however many speakers it has (the headline number of bench/accuracy.py)
    summary["uar_corpus_mean"] = round(float(by_corpus.mean()), 4)
    return summary
