"""Speaker-grouped k-fold cross-validation: every speaker tested exactly once, by a model that never heard it.

Folds are dealt per (corpus, gender) stratum, continuing round-robin across strata, so every fold
gets a near-equal share of each corpus and each gender (counts differ by at most one speaker per
stratum, per corpus and overall). Scores come from `ser.stats`: per-corpus UAR, their mean and the
gender gap, each with a 95% interval from resampling speakers. Training and scoring reuse
`ser.train.fit_and_score`; leave-one-speaker-out stays available as `k=None`
(and as `ser.train.train_loso`). `params` is the typed settings (ser.params) or a params.yaml dict, `spec`
a `models:` entry (typed or dict).

The report (`metrics/cv/<model>.json`, written by `write_cv`):

    model, kind, input, protocol ("speaker-grouped 5-fold" | "leave-one-speaker-out"), k, seed,
    labels: [emotions present], n: clips, n_speakers, corpora: [names],
    uar_by_corpus: {corpus: {uar, ci: [low, high], speakers, n}},
    uar_corpus_mean: {uar, ci},          # every corpus counts once: the headline number
    uar_pooled: {uar, ci},               # all clips together (big corpora dominate)
    by_gender: {gender: {uar, ci, speakers, n}},
    gender_gap: {female_minus_male, ci, corpora: [corpora with both genders]},
    bootstrap: {draws, level, unit: "speaker", strata: ["corpus"], seed},
    per_fold: [{fold, speakers: [...], n, uar_corpus_mean, uar_by_corpus: {corpus: uar}}],
    per_speaker: [{speaker, corpus, gender, fold, n, uar, accuracy}]

Numbers are rounded to 4 decimals; an undefined one is null.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import EMOTIONS
from ser.stats import N_BOOT, corpus_scores, gender_scores, speaker_table

DEFAULT_K = 5


def _seed(params: Any) -> int:
    """params' seed (typed settings or a params.yaml dict)."""
    from ser.params import Settings

    return Settings.coerce(params).seed


def _keras(params: Any) -> dict[str, Any]:
    """params' `train.keras` section as the dict fit_and_score takes."""
    from ser.params import Settings

    return Settings.coerce(params).train.keras.model_dump()


def speaker_folds(speakers: pd.DataFrame, k: int | None = DEFAULT_K, seed: int = 42) -> pd.Series:
    """Fold index per speaker (a Series indexed by speaker), from rows with `speaker`, `corpus`, `gender`.

    `k=None` gives one fold per speaker (leave-one-speaker-out). With fewer speakers than `k`, there
    are as many folds as speakers. Speakers are shuffled within each (corpus, gender) stratum (seeded)
    and dealt round-robin, the deal continuing from stratum to stratum in corpus, gender order.
    """
    missing = [c for c in ("speaker", "corpus", "gender") if c not in speakers.columns]
    if missing:
        raise ValueError(f"speaker_folds needs columns speaker, corpus, gender; missing {missing}")
    table = speakers.groupby("speaker", sort=True)[["corpus", "gender"]].first().reset_index()
    if table.empty:
        raise ValueError("no speakers to fold")
    n = len(table)
    if k is not None and k < 2:
        raise ValueError(f"k-fold cross-validation needs k >= 2, got {k}")
    k = n if k is None else min(int(k), n)
    if k < 2:
        raise ValueError(f"cross-validation needs at least two speakers; found {n} ({', '.join(table['speaker'])})")
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    position = 0
    for _, group in table.groupby(["corpus", "gender"], sort=True):
        ids = group["speaker"].tolist()
        rng.shuffle(ids)
        for speaker in ids:
            fold_of[speaker] = position % k
            position += 1
    return pd.Series(fold_of, name="fold").sort_index()


def _with_gender(table: Any, manifest: pd.DataFrame) -> pd.DataFrame:
    """The table's meta with each row's gender, from its speaker in the manifest."""
    by_speaker = manifest.groupby("speaker")["gender"].first()
    return table.meta.assign(gender=table.meta["speaker"].map(by_speaker).fillna("unknown").astype(str))


def table_kind(spec: Any) -> str:
    """A model entry's kind, from a typed ModelEntry or a dict."""
    from ser.train import _spec

    return str(_spec(spec)["kind"])


def _load(spec: Any, params: Any, features_dir: Path | str, manifest: pd.DataFrame):
    """(table, meta with gender, input kind) of exactly the manifest's utterances."""
    from ser.feature_table import FeatureSettings
    from ser.models import model_input
    from ser.train import _spec, load_table

    kind = model_input(_spec(spec)["kind"])
    table = load_table(features_dir, kind, FeatureSettings.from_params(params).features, manifest)
    return table, _with_gender(table, manifest), kind


def fold_predictions(spec: Any, params: Any, table: Any, meta: pd.DataFrame,
                     folds: pd.Series, on_fold: Callable[..., Any] | None = None) -> pd.DataFrame:
    """Train one model per fold on the other folds' speakers (with their augmented copies), predict the fold.

    `meta` is `table.meta` with `gender`; `folds` maps speaker -> fold. Keras models early-stop on the
    next fold's speakers, which are then left out of that fold's training too. Returns one row per
    original test clip: utt_id, corpus, speaker, gender, fold, actual, predicted.
    """
    from ser.models import model_framework
    from ser.train import _spec

    fold = meta["speaker"].map(folds).to_numpy()
    if pd.isna(fold).any():
        raise ValueError("some rows' speakers have no fold")
    aug = meta["augmented"].to_numpy()
    keras = model_framework(_spec(spec)["kind"]) == "keras"
    n_folds = int(folds.max()) + 1
    out = []
    for f in range(n_folds):
        held = (fold == f) & ~aug
        if not held.any():
            continue
        val_fold = (f + 1) % n_folds if keras else None
        val = table.subset((fold == val_fold) & ~aug) if keras else None
        part, fold_uar = _predict(spec, params, table.subset((fold != f) & (fold != val_fold)), val,
                                  table.subset(held), meta[held])
        out.append(part.assign(fold=f))
        if on_fold:
            on_fold(f + 1, n_folds, fold_uar)
    return pd.concat(out, ignore_index=True)


def _predict(spec: Any, params: Any, train: Any, val: Any, test: Any, test_meta: pd.DataFrame
             ) -> tuple[pd.DataFrame, float]:
    """Fit on `train` (val for early stopping only) with ser.train.fit_and_score; test clips' predictions and UAR."""
    from ser.params import Settings
    from ser.train import _spec, fit_and_score, normalizer

    _, _, scores, _, _ = fit_and_score(_spec(spec), _keras(params), _seed(params), train, val, {"test": test},
                                       norm=normalizer(Settings.coerce(params)))
    predicted = scores["test"].pop("predictions")
    part = test_meta[["utt_id", "corpus", "speaker", "gender"]].reset_index(drop=True)
    return part.assign(actual=predicted["actual"].to_numpy(), predicted=predicted["predicted"].to_numpy()), \
        scores["test"]["uar"]


def summarize(pred: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any]:
    """The CV report from fold predictions: ser.stats scores plus per-fold and per-speaker detail."""
    result: dict[str, Any] = {"n": int(len(pred)), "n_speakers": int(pred["speaker"].nunique()),
                              "corpora": sorted(pred["corpus"].unique())}
    result.update(corpus_scores(pred, n_boot=n_boot, seed=seed))
    result.update(gender_scores(pred, n_boot=n_boot, seed=seed))
    per_fold = []
    for f, part in pred.groupby("fold", sort=True):
        scores = corpus_scores(part, n_boot=1, seed=seed)
        per_fold.append({"fold": int(f), "speakers": sorted(part["speaker"].unique()), "n": int(len(part)),
                         "uar_corpus_mean": scores["uar_corpus_mean"]["uar"],
                         "uar_by_corpus": {c: v["uar"] for c, v in scores["uar_by_corpus"].items()}})
    result["per_fold"] = per_fold
    table = speaker_table(pred)
    result["per_speaker"] = [{k: (int(v) if isinstance(v, (np.integer,)) else v) for k, v in row.items()}
                             for row in table.to_dict(orient="records")]
    return result


def cross_validate(name: str, spec: Any, params: Any, features_dir: Path | str,
                   manifest: pd.DataFrame, *,
                   k: int | None = DEFAULT_K, n_boot: int = N_BOOT, corpora: list[str] | None = None,
                   speakers: list[str] | None = None, on_fold: Callable[..., Any] | None = None
                   ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Speaker-grouped k-fold CV of model `name` over every speaker of the manifest (all its splits).

    `corpora` / `speakers` restrict the speakers used. Returns (report, predictions); the report is
    the `metrics/cv/<name>.json` document (schema in the module docstring), predictions one row per
    clip (utt_id, corpus, speaker, gender, fold, actual, predicted) for figures.
    """
    seed = _seed(params)
    table, meta, kind = _load(spec, params, features_dir, manifest)
    keep = np.ones(len(meta), dtype=bool)
    if corpora is not None:
        keep &= meta["corpus"].isin(corpora).to_numpy()
    if speakers is not None:
        keep &= meta["speaker"].isin(speakers).to_numpy()
    if not keep.all():
        table, meta = table.subset(keep), meta[keep].reset_index(drop=True)
    originals = meta[~meta["augmented"]]
    folds = speaker_folds(originals, k, seed)
    pred = fold_predictions(spec, params, table, meta, folds, on_fold)
    report = {"model": name, "kind": table_kind(spec), "input": kind,
              "protocol": "leave-one-speaker-out" if k is None else f"speaker-grouped {int(folds.max()) + 1}-fold",
              "k": int(folds.max()) + 1, "seed": seed, "labels": [e for e in EMOTIONS if e in set(pred["actual"])],
              **summarize(pred, n_boot=n_boot, seed=seed)}
    return report, pred


def selection_score(spec: Any, params: Any, features_dir: Path | str, manifest: pd.DataFrame, *,
                    k: int = DEFAULT_K, min_val_speakers: int = 8, n_boot: int = N_BOOT) -> dict[str, Any]:
    """A model-choice score that several validation speakers back, never test speakers.

    With at least `min_val_speakers` validation speakers, the model is trained on the train split
    and scored on the val split; otherwise by speaker-grouped k-fold CV over the TRAIN speakers
    only. Either way the score is the mean of per-corpus UARs with its speaker-bootstrap 95%
    interval. Returns leaderboard columns: {val_uar, val_uar_ci_low, val_uar_ci_high, val_method,
    val_speakers}.
    """
    seed = _seed(params)
    table, meta, _ = _load(spec, params, features_dir, manifest)
    split, aug = meta["split"].to_numpy(), meta["augmented"].to_numpy()
    n_val = meta.loc[(split == "val") & ~aug, "speaker"].nunique()
    if n_val >= min_val_speakers:
        held = (split == "val") & ~aug
        pred, _ = _predict(spec, params, table.subset(split == "train"), table.subset(held), table.subset(held),
                           meta[held])
        method = "val split"
    else:
        use = split == "train"
        sub, sub_meta = table.subset(use), meta[use].reset_index(drop=True)
        folds = speaker_folds(sub_meta[~sub_meta["augmented"]], k, seed)
        pred = fold_predictions(spec, params, sub, sub_meta, folds)
        method = f"inner speaker-grouped {int(folds.max()) + 1}-fold CV on train speakers"
    return leaderboard_columns(pred, method, n_boot=n_boot, seed=seed)


def leaderboard_columns(pred: pd.DataFrame, method: str, *, prefix: str = "val", n_boot: int = N_BOOT,
                        seed: int = 0) -> dict[str, Any]:
    """{<prefix>_uar, _uar_ci_low, _uar_ci_high, _method, _speakers}: the mean of per-corpus UARs of these
    predictions (corpus, speaker, actual, predicted per clip) with its speaker-bootstrap interval."""
    score = corpus_scores(pred, n_boot=n_boot, seed=seed)["uar_corpus_mean"]
    return {f"{prefix}_uar": score["uar"], f"{prefix}_uar_ci_low": score["ci"][0],
            f"{prefix}_uar_ci_high": score["ci"][1], f"{prefix}_method": method,
            f"{prefix}_speakers": int(pred["speaker"].nunique())}


def write_cv(report: dict[str, Any], path: Path | str, predictions: pd.DataFrame | None = None) -> Path:
    """Write the report as JSON (atomically) and, when given, the predictions beside it as `<stem>.predictions.parquet`."""
    from ser.io import write_json, write_parquet

    path = Path(path)
    write_json(report, path)
    if predictions is not None:
        write_parquet(predictions, path.with_name(f"{path.stem}.predictions.parquet"))
    return path


def plot_cv(report: dict[str, Any], path: Path | str, title: str | None = None) -> Path:
    """Per-corpus UAR with its 95% speaker interval (one row each, speaker count in the label), the mean of
    per-corpus UARs and each gender below, chance as a dashed line."""
    from ser.plots import CHANCE, _figure, _save

    rows = [(f"{c} ({v['speakers']} spk)", v) for c, v in report["uar_by_corpus"].items()]
    rows.append((f"mean of corpora ({report['n_speakers']} spk)", report["uar_corpus_mean"]))
    rows += [(f"{g} ({v['speakers']} spk)", v) for g, v in report["by_gender"].items()]
    fig = _figure(7.0, 1.2 + 0.38 * len(rows))
    ax = fig.add_subplot()
    for i, (label, entry) in enumerate(rows):
        if entry["uar"] is None:
            continue
        low, high = (entry["ci"][0] if entry["ci"][0] is not None else entry["uar"],
                     entry["ci"][1] if entry["ci"][1] is not None else entry["uar"])
        colour = "black" if label.startswith("mean") else "tab:blue"
        ax.errorbar(entry["uar"], i, xerr=[[entry["uar"] - low], [high - entry["uar"]]], fmt="o", color=colour,
                    capsize=3)
    ax.axvline(CHANCE, color="grey", linestyle="--", linewidth=1, label=f"chance (1/7 = {CHANCE:.3f})")
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("UAR (95% CI, speakers resampled)")
    ax.set_title(title or f"{report['model']}: {report['protocol']}")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)
