"""Scores people compare models by: UAR first, then accuracy, macro-F1, per class, per corpus, per fold.

Labels are integer indices into `ser.EMOTIONS` (0..6). Every dict returned here is JSON-able with
`allow_nan=False`: plain ints and floats rounded to 4 decimals, and `None` where a number is undefined.

Definitions (all computed with sklearn.metrics):

* `uar`: unweighted average recall (sklearn's balanced accuracy), the mean recall over the classes
  PRESENT in `y_true`. A class that only occurs among the predictions has no recall and is left out.
* `accuracy`: share of clips predicted right.
* `macro_f1`: mean F1 over the classes present in `y_true` or `y_pred` (sklearn's default label set).
  A class that is predicted but absent from `y_true` counts with F1 0 (all its predictions are wrong);
  a class that is in `y_true` but never predicted counts with F1 0 too.
* `per_class[emotion]`: precision, recall and F1 of that class, each `None` exactly when its
  denominator is 0: precision when the class is never predicted, recall when its support is 0, F1
  (= 2TP / (2TP + FP + FN)) when the class is neither in `y_true` nor in `y_pred`. So a class with
  support 0 always has recall `None`; its F1 is `None` too unless the model predicted it (then 0.0,
  the value it contributes to `macro_f1`).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ser import EMOTIONS

N_CLASSES = len(EMOTIONS)
LABELS = list(range(N_CLASSES))
CHANCE_UAR = 1 / N_CLASSES
DIGITS = 4
# Scalars `flat_metrics` copies through when a metrics dict (or its `timings`) carries them.
TIMING_KEYS = ("train_s", "predict_ms_per_clip", "size_mb")
SUMMARY_KEYS = ("uar", "accuracy", "macro_f1")


def _round(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, DIGITS)


def _labels(y: Any, what: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{what} must hold integer labels 0..{N_CLASSES - 1}, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = arr[(arr < 0) | (arr >= N_CLASSES)]
    if bad.size:
        raise ValueError(f"{what} holds labels outside 0..{N_CLASSES - 1}: {sorted(set(bad.tolist()))[:5]}")
    return arr


def predictions(proba: Any) -> np.ndarray:
    """Predicted labels: argmax of (n, 7) probabilities (first class wins a tie), or 1-D labels as they are."""
    arr = np.asarray(proba)
    if arr.ndim == 1:
        return _labels(arr, "predicted labels")
    if arr.ndim != 2 or arr.shape[1] != N_CLASSES:
        raise ValueError(f"proba must be (n, {N_CLASSES}) in EMOTIONS order, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError("proba holds NaN or infinite values")
    return arr.argmax(axis=1).astype(np.int64)


def _summary(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """uar, accuracy, macro_f1 and n of one non-empty set of predictions."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected, those classes have no recall to average.
        warnings.simplefilter("ignore", UserWarning)
        uar = balanced_accuracy_score(y_true, y_pred)
    return {
        "uar": _round(uar),
        "accuracy": _round(accuracy_score(y_true, y_pred)),
        "macro_f1": _round(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "n": int(len(y_true)),
    }


def _per_class(y_true: np.ndarray, y_pred: np.ndarray, confusion: np.ndarray) -> dict[str, dict[str, Any]]:
    from sklearn.metrics import precision_recall_fscore_support

    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=0)
    # sklearn fills undefined ratios with 0; they become None here, from the counts.
    return {
        emotion: {
            "precision": _round(precision[i]) if predicted[i] else None,
            "recall": _round(recall[i]) if support[i] else None,
            "f1": _round(f1[i]) if (support[i] or predicted[i]) else None,
            "support": int(support[i]),
        }
        for i, emotion in enumerate(EMOTIONS)
    }


def evaluate(y_true: Any, proba: Any, *, groups: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Score predictions against true labels; JSON-able.

    `proba` is (n, 7) class probabilities in EMOTIONS order (the prediction is the argmax), or
    1-D predicted labels. `groups` maps a grouping name to one value per clip, e.g.
    `{"corpus": corpora, "speaker": speakers}`; each adds `by_<name>`: {str(value): {uar, accuracy,
    macro_f1, n}}, values in sorted order.

    Returns {uar, accuracy, macro_f1, n, labels (EMOTIONS), per_class {emotion: {precision, recall, f1,
    support}} for all seven, confusion (7x7 ints, rows true, columns predicted), by_<name>...}.
    Raises ValueError on empty input, mismatched lengths or labels outside 0..6.
    """
    from sklearn.metrics import confusion_matrix

    y_true = _labels(y_true, "y_true")
    y_pred = predictions(proba)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but proba has {len(y_pred)} rows")
    if not len(y_true):
        raise ValueError("nothing to evaluate: y_true is empty")
    confusion = confusion_matrix(y_true, y_pred, labels=LABELS)
    result: dict[str, Any] = {
        **_summary(y_true, y_pred),
        "labels": list(EMOTIONS),
        "per_class": _per_class(y_true, y_pred, confusion),
        "confusion": confusion.astype(int).tolist(),
    }
    for name, values in (groups or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"group names must be non-empty strings, got {name!r}")
        values = np.asarray(values, dtype=object)
        if values.shape != y_true.shape:
            raise ValueError(f"group {name!r} has {values.shape} values for {len(y_true)} labels")
        keys = np.array([str(v) for v in values], dtype=object)
        result[f"by_{name}"] = {
            key: _summary(y_true[keys == key], y_pred[keys == key]) for key in sorted(set(keys.tolist()))
        }
    return result


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    arr = np.array([v for v in values if v is not None], dtype=np.float64)
    if not arr.size:
        return None, None
    return _round(arr.mean()), _round(arr.std(ddof=1) if arr.size > 1 else 0.0)


def _uar_from_confusion(confusion: np.ndarray) -> float | None:
    support = confusion.sum(axis=1)
    present = support > 0
    if not present.any():
        return None
    return _round(np.mean(np.diag(confusion)[present] / support[present]))


def summarize_folds(fold_metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and spread over cross-validation folds (e.g. leave-one-speaker-out), each fold weighted equally.

    Each fold is an `evaluate` result, optionally with `fold`, `speaker` and `corpus` keys. `*_std` is
    the SAMPLE standard deviation (ddof=1) over folds, 0.0 for a single fold. Returns
    {folds, n, uar_mean, uar_std, accuracy_mean, accuracy_std, macro_f1_mean, macro_f1_std,
    uar_pooled, confusion, per_fold: [{fold, speaker?, corpus?, uar, accuracy, macro_f1, n?}]}, where
    `confusion` is the 7x7 sum of the folds' matrices (None unless every fold has one) and `uar_pooled`
    the UAR of that pooled matrix (all test clips of all folds scored together).
    """
    folds = list(fold_metrics)
    if not folds:
        raise ValueError("no folds to summarise")
    out: dict[str, Any] = {"folds": len(folds)}
    if all("n" in f for f in folds):
        out["n"] = int(sum(int(f["n"]) for f in folds))
    for key in SUMMARY_KEYS:
        missing = [i for i, f in enumerate(folds) if key not in f]
        if missing:
            raise ValueError(f"fold(s) {missing[:5]} have no {key!r}")
        out[f"{key}_mean"], out[f"{key}_std"] = _mean_std([f[key] for f in folds])
    if all(f.get("confusion") is not None for f in folds):
        pooled = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
        for i, f in enumerate(folds):
            matrix = np.asarray(f["confusion"], dtype=np.int64)
            if matrix.shape != pooled.shape:
                raise ValueError(f"fold {i} confusion has shape {matrix.shape}, expected {pooled.shape}")
            pooled += matrix
        out["uar_pooled"] = _uar_from_confusion(pooled)
        out["confusion"] = pooled.tolist()
    else:
        out["uar_pooled"] = None
        out["confusion"] = None
    per_fold = []
    for i, f in enumerate(folds):
        row: dict[str, Any] = {"fold": f.get("fold", i)}
        row.update({k: f[k] for k in ("speaker", "corpus") if k in f})
        row.update({k: f[k] for k in SUMMARY_KEYS})
        if "n" in f:
            row["n"] = int(f["n"])
        per_fold.append(row)
    out["per_fold"] = per_fold
    return out


def flat_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers worth a `dvc metrics show` column, from one `evaluate` result.

    {uar, accuracy, macro_f1, n, uar_<corpus> for each corpus in `by_corpus`, and train_s,
    predict_ms_per_clip, size_mb when present at the top level or under `timings`}. Other groupings
    (e.g. by speaker) and per-class numbers stay out: they belong in the full JSON report.
    """
    missing = [k for k in (*SUMMARY_KEYS, "n") if k not in metrics]
    if missing:
        raise ValueError(f"not an evaluate() result: missing {missing}")
    flat: dict[str, Any] = {k: metrics[k] for k in (*SUMMARY_KEYS, "n")}
    for corpus, scores in sorted((metrics.get("by_corpus") or {}).items()):
        flat[f"uar_{corpus}"] = scores["uar"]
    timings = {**(metrics.get("timings") or {}), **{k: metrics[k] for k in TIMING_KEYS if k in metrics}}
    flat.update({k: timings[k] for k in TIMING_KEYS if k in timings})
    return flat


LEADERBOARD_FIRST = ("model", "kind", "val_uar", "val_uar_ci_low", "val_uar_ci_high", "val_method", "val_speakers",
                     "test_uar", "test_uar_ci_low", "test_uar_ci_high", "test_accuracy", "test_macro_f1",
                     "train_s", "predict_ms_per_clip", "size_mb")


def leaderboard(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model, best VALIDATION UAR first (test scores never decide the rank).

    Columns: those of LEADERBOARD_FIRST that occur, then any others in first-seen order. A model without
    a validation UAR (None/NaN) sorts last; ties keep the input order. Index is 0..n-1 (rank - 1).
    """
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("no models to rank")
    for i, r in enumerate(rows):
        if "model" not in r or "val_uar" not in r:
            raise ValueError(f"row {i} needs 'model' and 'val_uar': {sorted(r)}")
    df = pd.DataFrame(rows)
    columns = [c for c in LEADERBOARD_FIRST if c in df.columns] + [c for c in df.columns if c not in LEADERBOARD_FIRST]
    df = df[columns]
    df["val_uar"] = pd.to_numeric(df["val_uar"], errors="raise").astype("float64")
    return df.sort_values("val_uar", ascending=False, na_position="last", kind="mergesort").reset_index(drop=True)


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if any(k in column for k in ("uar", "accuracy", "f1")):
            return f"{float(value):.4f}"
        value = float(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def top_two_overlap(df: pd.DataFrame) -> bool | None:
    """Whether the validation CIs of the first two rows of `leaderboard(...)` overlap (None without two intervals)."""
    if len(df) < 2 or not {"val_uar_ci_low", "val_uar_ci_high"} <= set(df.columns):
        return None
    (lo1, hi1), (lo2, hi2) = (df.loc[i, ["val_uar_ci_low", "val_uar_ci_high"]] for i in (0, 1))
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (lo1, hi1, lo2, hi2)):
        return None
    return bool(float(lo1) <= float(hi2) and float(lo2) <= float(hi1))


def leaderboard_markdown(df: pd.DataFrame) -> str:
    """A Markdown table of `leaderboard(...)`, with a line saying the rank is by validation UAR, and a note
    when the top two validation intervals overlap."""
    lines = [
        "Ranked by validation UAR (`val_uar`), highest first; test scores are reported for reference and "
        f"never decide the rank. Chance UAR is 1/{N_CLASSES} = {CHANCE_UAR:.4f}.",
        "",
    ]
    if "val_uar_ci_low" in df.columns:
        lines[0] += (" `val_uar` is the mean of per-corpus validation UARs; `val_uar_ci_low`..`val_uar_ci_high` "
                     "its 95% interval from resampling validation speakers (`val_speakers` of them).")
    if top_two_overlap(df):
        lines += [f"The top two ({df.loc[0, 'model']}, {df.loc[1, 'model']}) have overlapping validation "
                  "intervals: not distinguishable on these speakers.", ""]
    lines += [
        "| # | " + " | ".join(str(c) for c in df.columns) + " |",
        "|---:|" + "|".join("---:" if pd.api.types.is_numeric_dtype(df[c]) else "---" for c in df.columns) + "|",
    ]
    for rank, (_, row) in enumerate(df.iterrows(), start=1):
        lines.append(f"| {rank} | " + " | ".join(_cell(str(c), row[c]) for c in df.columns) + " |")
    return "\n".join(lines) + "\n"
