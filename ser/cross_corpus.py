"""Cross-corpus generalisation: train on one corpus, test on another, on the emotions the two share.

Corpora label different emotion sets (EmoDB has no surprise, CREMA-D none either, ESD no fear or
disgust), so each (train, test) pair is scored on the intersection of their labels: test clips of
other emotions are left out, and the prediction is the most probable SHARED emotion (the model's
probabilities of the others are ignored), so a model is never marked wrong for a class the test
corpus cannot have, nor right by chance on one the training corpus never saw. One model is
trained per training corpus (`ser.train.fit_and_score`, speaker normalisation as params say) and
applied to every other corpus. Leave-one-corpus-out trains on all corpora but one.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import EMOTIONS
from ser.cv import _keras, _seed
from ser.stats import N_BOOT, corpus_scores

LABEL_INDEX = {e: i for i, e in enumerate(EMOTIONS)}


def shared_emotions(train_labels: Iterable[str], test_labels: Iterable[str]) -> list[str]:
    """The emotions both label sets hold, in EMOTIONS order."""
    both = set(train_labels) & set(test_labels)
    unknown = both - set(EMOTIONS)
    if unknown:
        raise ValueError(f"labels outside EMOTIONS: {sorted(unknown)}")
    return [e for e in EMOTIONS if e in both]


def restricted_predictions(proba: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Argmax over `labels` only: the most probable of the allowed emotions, as EMOTIONS names."""
    if not labels:
        raise ValueError("no labels to predict among")
    allowed = np.array([LABEL_INDEX[e] for e in labels])
    return np.array(EMOTIONS)[allowed[np.asarray(proba)[:, allowed].argmax(axis=1)]]


def _load(spec: Any, params: Any, features_dir: Path | str, manifest: pd.DataFrame):
    from ser.cv import _load as load

    table, meta, _ = load(spec, params, features_dir, manifest)
    return table, meta


def _fit(spec: Any, params: Any, train: Any):
    from ser.params import Settings
    from ser.train import _spec, fit_and_score, normalizer

    model, scaler, _, _, _ = fit_and_score(_spec(spec), _keras(params), _seed(params), train, None, {},
                                           norm=normalizer(Settings.coerce(params)))
    return model, scaler


def _score(model: Any, scaler: Any, test: Any, test_meta: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Predictions of `model` on the test clips whose emotion is in `labels`, restricted to `labels`."""
    from ser.train import scale

    actual = np.array(EMOTIONS)[test.y]
    keep = np.isin(actual, labels)
    sub = test.subset(keep)
    proba = model.predict_proba(scale(scaler, sub))
    return test_meta[keep][["utt_id", "corpus", "speaker", "gender"]].reset_index(drop=True).assign(
        actual=actual[keep], predicted=restricted_predictions(proba, labels))


def cross_corpus_matrix(spec: Any, params: Any, features_dir: Path | str, manifest: pd.DataFrame, *,
                        corpora: Sequence[str] | None = None, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Train on each corpus, test on every other on their shared emotions: one row per (train, test) pair.

    Columns: train, test, uar, ci_low, ci_high (speaker bootstrap over the test corpus), n (test
    clips scored), speakers (test), emotions (the shared labels, comma-separated), n_emotions.
    Training uses all of the training corpus's clips (with any augmented copies), testing the
    other corpus's original clips. Pairs sharing fewer than two emotions are left out.
    """
    table, meta = _load(spec, params, features_dir, manifest)
    aug = meta["augmented"].to_numpy()
    names = sorted(meta["corpus"].unique()) if corpora is None else list(corpora)
    labels = {c: set(np.array(EMOTIONS)[table.y[(meta["corpus"] == c).to_numpy() & ~aug]]) for c in names}
    rows = []
    for train_corpus in names:
        in_train = (meta["corpus"] == train_corpus).to_numpy()
        model, scaler = _fit(spec, params, table.subset(in_train))
        for test_corpus in names:
            if test_corpus == train_corpus:
                continue
            shared = shared_emotions(labels[train_corpus], labels[test_corpus])
            if len(shared) < 2:
                continue
            held = (meta["corpus"] == test_corpus).to_numpy() & ~aug
            pred = _score(model, scaler, table.subset(held), meta[held], shared)
            score = corpus_scores(pred, n_boot=n_boot, seed=_seed(params))["uar_by_corpus"][test_corpus]
            rows.append({"train": train_corpus, "test": test_corpus, "uar": score["uar"], "ci_low": score["ci"][0],
                         "ci_high": score["ci"][1], "n": score["n"], "speakers": score["speakers"],
                         "emotions": ",".join(shared), "n_emotions": len(shared)})
    return pd.DataFrame(rows, columns=["train", "test", "uar", "ci_low", "ci_high", "n", "speakers", "emotions",
                                       "n_emotions"])


def leave_one_corpus_out(spec: Any, params: Any, features_dir: Path | str, manifest: pd.DataFrame, *,
                         corpora: Sequence[str] | None = None, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Train on every corpus but one, test on that one (on the emotions the training corpora cover).

    Columns: test, uar, ci_low, ci_high, n, speakers, emotions, n_emotions.
    """
    table, meta = _load(spec, params, features_dir, manifest)
    aug = meta["augmented"].to_numpy()
    names = sorted(meta["corpus"].unique()) if corpora is None else list(corpora)
    rows = []
    for test_corpus in names:
        in_test = (meta["corpus"] == test_corpus).to_numpy()
        train = table.subset(~in_test)
        shared = shared_emotions(np.array(EMOTIONS)[train.y], np.array(EMOTIONS)[table.y[in_test & ~aug]])
        model, scaler = _fit(spec, params, train)
        pred = _score(model, scaler, table.subset(in_test & ~aug), meta[in_test & ~aug], shared)
        score = corpus_scores(pred, n_boot=n_boot, seed=_seed(params))["uar_by_corpus"][test_corpus]
        rows.append({"test": test_corpus, "uar": score["uar"], "ci_low": score["ci"][0], "ci_high": score["ci"][1],
                     "n": score["n"], "speakers": score["speakers"], "emotions": ",".join(shared),
                     "n_emotions": len(shared)})
    return pd.DataFrame(rows, columns=["test", "uar", "ci_low", "ci_high", "n", "speakers", "emotions", "n_emotions"])


def as_matrix(pairs: pd.DataFrame, diagonal: dict[str, float] | None = None) -> pd.DataFrame:
    """The pairs frame as a train x test UAR matrix (NaN where a pair was not scored); `diagonal`
    (e.g. within-corpus CV UARs from ser.cv) fills the diagonal."""
    names = sorted(set(pairs["train"]) | set(pairs["test"]) | set(diagonal or {}))
    matrix = pairs.pivot(index="train", columns="test", values="uar").reindex(index=names, columns=names).astype(float)
    for corpus, value in (diagonal or {}).items():
        matrix.loc[corpus, corpus] = value
    matrix.index.name, matrix.columns.name = "train", "test"
    return matrix


def matrix_markdown(pairs: pd.DataFrame, diagonal: dict[str, float] | None = None) -> str:
    """A Markdown train (rows) x test (columns) table of UARs; each cell's shared-emotion count in brackets."""
    matrix = as_matrix(pairs, diagonal)
    count = {(r.train, r.test): r.n_emotions for r in pairs.itertuples()}
    lines = ["| train \\ test | " + " | ".join(matrix.columns) + " |", "|---|" + "---:|" * len(matrix.columns)]
    for train in matrix.index:
        cells = []
        for test in matrix.columns:
            value = matrix.loc[train, test]
            if np.isnan(value):
                cells.append("–")
            else:
                cells.append(f"{value:.3f}" + (f" ({count[(train, test)]})" if (train, test) in count else " (cv)"))
        lines.append(f"| {train} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("UAR on the emotions both corpora label (how many in brackets; chance is 1/that number); "
                 "(cv) marks the diagonal's score passed in (e.g. a speaker-grouped CV score).")
    return "\n".join(lines) + "\n"


def loco_markdown(loco: pd.DataFrame) -> str:
    """A Markdown table of `leave_one_corpus_out`."""
    lines = ["| held-out corpus | speakers | clips | emotions | UAR [95% CI] | chance |", "|---|---:|---:|---:|---|---:|"]
    for r in loco.itertuples():
        lines.append(f"| {r.test} | {r.speakers} | {r.n} | {r.n_emotions} | {r.uar:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] "
                     f"| {1 / r.n_emotions:.3f} |")
    return "\n".join(lines) + "\n"


def plot_matrix(pairs: pd.DataFrame, path: Path | str, title: str = "cross-corpus UAR (shared emotions)",
                diagonal: dict[str, float] | None = None) -> Path:
    """Heatmap of the train x test UAR matrix, each cell annotated with its UAR and shared-emotion count."""
    from ser.plots import _figure, _save

    matrix = as_matrix(pairs, diagonal)
    count = {(r.train, r.test): r.n_emotions for r in pairs.itertuples()}
    n = len(matrix)
    fig = _figure(1.2 + 0.9 * n, 1.0 + 0.8 * n)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(matrix.to_numpy()), cmap="viridis", vmin=0.0, vmax=1.0)
    for i, train in enumerate(matrix.index):
        for j, test in enumerate(matrix.columns):
            value = matrix.iloc[i, j]
            if not np.isnan(value):
                note = f"{count[(train, test)]} em." if (train, test) in count else "cv"
                ax.text(j, i, f"{value:.2f}\n{note}", ha="center", va="center", fontsize=8,
                        color="white" if value < 0.6 else "black")
    ax.set_xticks(range(n), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), matrix.index)
    ax.set_xlabel("test corpus")
    ax.set_ylabel("train corpus")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="UAR")
    return _save(fig, path)
