"""Figures and DVC plot tables for trained models: confusion matrices, training curves, leaderboards.

matplotlib is imported inside each function, and figures are built on `matplotlib.figure.Figure`
(rendered by Agg) rather than pyplot: no global backend switch, no figure left open, safe in threads.
Every file is written atomically (`ser.io.atomic_path`): a reader sees the old file or the new one.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser import EMOTIONS
from ser.io import atomic_path

N_CLASSES = len(EMOTIONS)
CHANCE = 1 / N_CLASSES
DPI = 110
NO_HISTORY = "no per-epoch history (non-iterative model)"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: Path | str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def plot_confusion(confusion: Any, path: Path | str, title: str = "confusion matrix", normalize: bool = True) -> Path:
    """Heatmap of a 7x7 confusion matrix (rows true, columns predicted, EMOTIONS order).

    With `normalize`, colour is each row's share (the recall of the true class on the diagonal) and each
    cell shows its count over its row share; otherwise colour and text are counts. Row labels carry the
    support; a row with no clips stays blank.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    if counts.shape != (N_CLASSES, N_CLASSES):
        raise ValueError(f"confusion must be {N_CLASSES}x{N_CLASSES}, got shape {counts.shape}")
    support = counts.sum(axis=1)
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            shown = np.where(support[:, None] > 0, counts / np.maximum(support, 1)[:, None], np.nan)
        vmax = 1.0
    else:
        shown = counts.astype(np.float64)
        vmax = max(1.0, float(counts.max()))
    fig = _figure(7.2, 6.0)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(shown), cmap="Blues", vmin=0.0, vmax=vmax)
    for i in range(N_CLASSES):
        for j in range(N_CLASSES):
            if normalize and not support[i]:
                continue
            value = shown[i, j]
            text = f"{counts[i, j]}\n{value:.0%}" if normalize else f"{counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if value > 0.55 * vmax else "black")
    ax.set_xticks(range(N_CLASSES), EMOTIONS, rotation=35, ha="right")
    ax.set_yticks(range(N_CLASSES), [f"{e} ({n})" for e, n in zip(EMOTIONS, support)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (clips)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class" if normalize else "clips")
    return _save(fig, path)


def _history_panels(history: Mapping[str, Sequence[float]]) -> list[tuple[str, list[str]]]:
    """Panels of (metric, keys): each metric with its val_ twin; loss and accuracy first, learning rate last."""
    keys = [k for k, v in history.items() if v is not None and len(v)]
    bases: list[str] = []
    for k in keys:
        base = k[4:] if k.startswith("val_") else k
        base = "lr" if base == "learning_rate" else base
        if base not in bases:
            bases.append(base)
    order = {"loss": 0, "accuracy": 1, "lr": 3}
    bases.sort(key=lambda b: (order.get(b, 2), b))

    def members(base: str) -> list[str]:
        names = ("lr", "learning_rate") if base == "lr" else (base, f"val_{base}")
        return [k for k in keys if k in names]

    return [(b, members(b)) for b in bases]


def plot_history(history: Mapping[str, Sequence[float]], path: Path | str, title: str = "training curves") -> Path | None:
    """Per-epoch curves, one panel per metric: loss and val_loss, accuracy and val_accuracy, any other
    metric with its val_ twin, and the learning rate (`lr` or `learning_rate`, log scale) last. Any subset
    of keys works; a dashed line marks the epoch with the lowest val_loss (the one early stopping keeps).

    An empty history (sklearn models: no epochs) has nothing to draw: returns None and writes nothing,
    removing a file left at `path` by an earlier run so no stale curves outlive the model they showed.
    """
    path = Path(path)
    panels = _history_panels(history or {})
    if not panels:
        path.unlink(missing_ok=True)
        return None
    finite = [(v, i) for i, v in enumerate(history.get("val_loss") or []) if v is not None and math.isfinite(v)]
    best = min(finite)[1] + 1 if finite else None
    fig = _figure(4.2 * len(panels) + 0.4, 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (base, keys) in zip(axes, panels):
        for key in keys:
            values = np.asarray([np.nan if v is None else v for v in history[key]], dtype=np.float64)
            epochs = np.arange(1, len(values) + 1)
            style = "--" if key.startswith("val_") else "-"
            ax.plot(epochs, values, style, marker="o" if len(values) <= 30 else None, markersize=3,
                    label="learning rate" if base == "lr" else ("validation" if key.startswith("val_") else "train"))
        if base == "lr":
            lr = np.asarray([v for v in history[keys[0]] if v is not None], dtype=np.float64)
            if lr.size and np.all(lr > 0) and lr.max() / lr.min() > 10:
                ax.set_yscale("log")
        if best is not None:
            ax.axvline(best, color="grey", linestyle=":", linewidth=1, label=f"best val_loss (epoch {best})")
        ax.set_title("learning rate" if base == "lr" else base.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def _column(df: Any, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return np.asarray([np.nan if v is None else float(v) for v in df[name]], dtype=np.float64)


def plot_leaderboard(df: Any, path: Path | str, title: str = "models by validation UAR") -> Path:
    """Horizontal bars of validation and test UAR per model, best validation UAR on top, chance dashed.

    `df` is a `ser.evaluate.leaderboard` frame (needs `model` and `val_uar`; `test_uar` optional). It is
    re-sorted by val_uar here, so any row order works; a model without val_uar goes to the bottom.
    """
    if not len(df):
        raise ValueError("empty leaderboard: nothing to plot")
    val = _column(df, "val_uar")
    order = sorted(range(len(df)), key=lambda i: (math.isnan(val[i]), -val[i] if not math.isnan(val[i]) else 0, i))
    models = [str(df["model"].iloc[i]) for i in order]
    val, test = val[order], _column(df, "test_uar")[order]
    y = np.arange(len(models))
    height = 0.38
    fig = _figure(7.5, 1.5 + 0.55 * len(models))
    ax = fig.add_subplot()
    for offset, values, label, color in ((-height / 2, val, "validation UAR (ranks)", "tab:blue"),
                                         (height / 2, test, "test UAR", "tab:orange")):
        bars = ax.barh(y + offset, np.nan_to_num(values), height, label=label, color=color)
        for bar, v in zip(bars, values):
            ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2,
                    "n/a" if math.isnan(v) else f"{v:.3f}", va="center", fontsize=8)
    ax.axvline(CHANCE, color="black", linestyle="--", linewidth=1, label=f"chance (1/{N_CLASSES})")
    ax.set_yticks(y, models)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("UAR (unweighted average recall)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return _save(fig, path)


def plot_per_corpus(metrics_by_model: Mapping[str, Mapping[str, float]], path: Path | str,
                    title: str = "UAR per corpus") -> Path:
    """Grouped bars: one group per corpus (sorted), one bar per model (in the given order); chance dashed.

    `metrics_by_model` is {model: {corpus: uar}}; a corpus a model was not scored on gets no bar.
    """
    models = list(metrics_by_model)
    corpora = sorted({c for scores in metrics_by_model.values() for c in scores})
    if not models or not corpora:
        raise ValueError("no per-corpus scores to plot")
    width = 0.8 / len(models)
    x = np.arange(len(corpora))
    fig = _figure(max(5.0, 1.0 + len(corpora) * (0.5 + 0.35 * len(models))), 4.4)
    ax = fig.add_subplot()
    for k, model in enumerate(models):
        values = np.array([np.nan if metrics_by_model[model].get(c) is None else float(metrics_by_model[model][c])
                           for c in corpora])
        shown = ~np.isnan(values)
        ax.bar(x[shown] - 0.4 + width * (k + 0.5), values[shown], width, label=model)
    ax.axhline(CHANCE, color="black", linestyle="--", linewidth=1, label=f"chance (1/{N_CLASSES})")
    ax.set_xticks(x, corpora)
    ax.set_ylim(0, 1)
    ax.set_ylabel("UAR")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(5, len(models) + 1),
               fontsize=8, frameon=False)
    return _save(fig, path)


def _names(y: Any, what: str) -> list[str]:
    out = []
    for v in np.asarray(y, dtype=object).tolist():
        if isinstance(v, str):
            if v not in EMOTIONS:
                raise ValueError(f"{what}: {v!r} is not one of {EMOTIONS}")
            out.append(v)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= int(v) < N_CLASSES:
            out.append(EMOTIONS[int(v)])
        else:
            raise ValueError(f"{what}: {v!r} is neither a label 0..{N_CLASSES - 1} nor an emotion name")
    return out


def write_predictions_csv(path: Path | str, y_true: Any, y_pred: Any) -> Path:
    """`actual,predicted` per clip as emotion names (DVC's confusion template); labels 0..6 or names in."""
    import pandas as pd

    actual, predicted = _names(y_true, "y_true"), _names(y_pred, "y_pred")
    if len(actual) != len(predicted):
        raise ValueError(f"y_true has {len(actual)} labels, y_pred {len(predicted)}")
    path = Path(path)
    with atomic_path(path) as tmp:
        pd.DataFrame({"actual": actual, "predicted": predicted}).to_csv(tmp, index=False)
    return path


def write_history_csv(path: Path | str, history: Mapping[str, Sequence[float]]) -> Path:
    """One row per epoch: `epoch` (1-based) then the history's keys; shorter series padded with blanks.

    Always writes a file (only the `epoch` header for an empty history), so a DVC plot output exists
    for every model.
    """
    import pandas as pd

    history = {k: list(v) for k, v in (history or {}).items() if v is not None}
    epochs = max((len(v) for v in history.values()), default=0)
    table = {"epoch": list(range(1, epochs + 1))}
    table.update({k: v + [None] * (epochs - len(v)) for k, v in history.items() if k != "epoch"})
    path = Path(path)
    with atomic_path(path) as tmp:
        pd.DataFrame(table).to_csv(tmp, index=False)
    return path


def plot_note(path: Path | str, text: str) -> Path:
    """A small figure holding one line of text, where a plot is declared but has nothing to draw."""
    from matplotlib.figure import Figure

    from ser.io import atomic_path

    fig = Figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path
