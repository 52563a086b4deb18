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


def _confusion_shown(counts: np.ndarray, normalize: bool) -> tuple[np.ndarray, float]:
    support = counts.sum(axis=1)
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(support[:, None] > 0, counts / np.maximum(support, 1)[:, None], np.nan), 1.0
    return counts.astype(np.float64), max(1.0, float(counts.max()))


def _check_confusion(confusion: Any) -> np.ndarray:
    counts = np.asarray(confusion, dtype=np.int64)
    if counts.shape != (N_CLASSES, N_CLASSES):
        raise ValueError(f"confusion must be {N_CLASSES}x{N_CLASSES}, got shape {counts.shape}")
    return counts


def _draw_confusion(ax: Any, counts: np.ndarray, normalize: bool, title: str, fontsize: int = 8,
                    ticklabels: bool = True) -> Any:
    support = counts.sum(axis=1)
    shown, vmax = _confusion_shown(counts, normalize)
    image = ax.imshow(np.ma.masked_invalid(shown), cmap="Blues", vmin=0.0, vmax=vmax)
    for i in range(N_CLASSES):
        for j in range(N_CLASSES):
            if normalize and not support[i]:
                continue
            value = shown[i, j]
            text = f"{counts[i, j]}\n{value:.0%}" if normalize else f"{counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if value > 0.55 * vmax else "black")
    ax.set_xticks(range(N_CLASSES), EMOTIONS if ticklabels else [""] * N_CLASSES, rotation=35, ha="right")
    ax.set_yticks(range(N_CLASSES), [f"{e} ({n})" for e, n in zip(EMOTIONS, support)])
    ax.set_title(title)
    return image


def plot_confusion(confusion: Any, path: Path | str, title: str = "confusion matrix", normalize: bool = True) -> Path:
    """Heatmap of a 7x7 confusion matrix (rows true, columns predicted, EMOTIONS order).

    With `normalize`, colour is each row's share (the recall of the true class on the diagonal) and each
    cell shows its count over its row share; otherwise colour and text are counts. Row labels carry the
    support; a row with no clips stays blank.
    """
    counts = _check_confusion(confusion)
    fig = _figure(7.2, 6.0)
    ax = fig.add_subplot()
    image = _draw_confusion(ax, counts, normalize, title)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (clips)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class" if normalize else "clips")
    return _save(fig, path)


def confusions_by_corpus(y_true: Any, y_pred: Any, corpus: Sequence[str]) -> dict[str, list[list[int]]]:
    """{corpus: 7x7 confusion counts} from per-clip true and predicted labels (0..6 or emotion names)."""
    true = np.array([EMOTIONS.index(v) for v in _names(y_true, "y_true")], dtype=np.int64)
    pred = np.array([EMOTIONS.index(v) for v in _names(y_pred, "y_pred")], dtype=np.int64)
    corpus = np.asarray(corpus, dtype=object)
    if not len(true) == len(pred) == len(corpus):
        raise ValueError(f"{len(true)} true labels, {len(pred)} predictions, {len(corpus)} corpus names")
    out = {}
    for name in sorted(set(corpus.tolist())):
        m = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
        np.add.at(m, (true[corpus == name], pred[corpus == name]), 1)
        out[str(name)] = m.tolist()
    return out


def confusion_grid_figure(confusions: Mapping[str, Any], title: str = "confusion per corpus", cols: int = 3) -> Any:
    """One row-normalised confusion matrix per corpus in a grid (at most `cols` across), one colour scale."""
    if not confusions:
        raise ValueError("no per-corpus confusion matrices to plot")
    names = list(confusions)
    cols = min(cols, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(4.6 * cols + 0.8, 4.3 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.axis("off")
            continue
        counts = _check_confusion(confusions[names[k]])
        support = counts.sum(axis=1)
        uar = float(np.mean(np.diag(counts)[support > 0] / support[support > 0])) if support.any() else float("nan")
        image = _draw_confusion(ax, counts, True, f"{names[k]}: UAR {uar:.3f}, {int(counts.sum())} clips", fontsize=6)
        ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=axes, shrink=0.6, label="share of the true class")
    fig.suptitle(title)
    return fig


def plot_confusions_by_corpus(confusions: Mapping[str, Any], path: Path | str, title: str = "confusion per corpus") -> Path:
    """`confusion_grid_figure` written to `path`."""
    return _save(confusion_grid_figure(confusions, title), path)


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


NO_TEST_SPEAKERS = "no test speakers"


def per_corpus_figure(metrics_by_model: Mapping[str, Mapping[str, float]], corpora: Sequence[str] | None = None,
                      title: str = "test UAR per corpus") -> Any:
    """Models (rows, in the given order) by corpora (columns): each cell the model's UAR on that corpus.

    A table of colours reads for any number of models, where grouped bars ran out of distinct colours.
    `corpora` lists every corpus of the run: one no model was scored on (no test speakers, say) keeps its
    column, marked, instead of vanishing.
    """
    models = list(metrics_by_model)
    scored = {c for scores in metrics_by_model.values() for c, v in scores.items() if v is not None}
    names = sorted(set(corpora or []) | scored)
    if not models or not names:
        raise ValueError("no per-corpus scores to plot")
    values = np.array([[np.nan if metrics_by_model[m].get(c) is None else float(metrics_by_model[m][c])
                        for c in names] for m in models])
    fig = _figure(2.2 + 1.05 * len(names), 1.3 + 0.34 * len(models))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(len(models)):
        for j in range(len(names)):
            v = values[i, j]
            if not math.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if v > 0.6 else "white")
    for j, c in enumerate(names):
        if c not in scored:
            ax.axvspan(j - 0.5, j + 0.5, facecolor="none", edgecolor="grey", hatch="//", linewidth=0)
    ax.set_xticks(range(len(names)), [c if c in scored else f"{c}\n({NO_TEST_SPEAKERS})" for c in names],
                  rotation=30 if len(names) > 5 else 0, ha="right" if len(names) > 5 else "center")
    ax.set_yticks(range(len(models)), models)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=f"UAR (chance {CHANCE:.2f})", shrink=0.9)
    return fig


def plot_per_corpus(metrics_by_model: Mapping[str, Mapping[str, float]], path: Path | str,
                    title: str = "test UAR per corpus", corpora: Sequence[str] | None = None) -> Path:
    """`per_corpus_figure` written to `path`."""
    return _save(per_corpus_figure(metrics_by_model, corpora, title), path)


def distinct_colors(n: int) -> list[tuple[float, float, float, float]]:
    """`n` colours no two alike: tab10, then tab20, then evenly spaced hues."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["hsv"](i / n) for i in range(n)]


def per_speaker_figure(per_fold: Sequence[Mapping[str, Any]], title: str = "UAR per held-out speaker") -> Any:
    """Cross-validation / leave-one-speaker-out: one bar per held-out speaker (grouped by corpus, best
    first within a corpus), coloured by corpus, with the mean over speakers and chance as lines.

    `per_fold` rows need `speaker` and `uar`; `corpus` and `n` (clips) are used when present.
    """
    rows = [dict(r) for r in per_fold if r.get("uar") is not None]
    if not rows:
        raise ValueError("no per-speaker scores to plot")
    for r in rows:
        r.setdefault("corpus", str(r["speaker"]).split(":")[0] if ":" in str(r["speaker"]) else "all")
    rows.sort(key=lambda r: (str(r["corpus"]), -float(r["uar"]), str(r["speaker"])))
    corpora = list(dict.fromkeys(str(r["corpus"]) for r in rows))
    palette = dict(zip(corpora, distinct_colors(len(corpora))))
    y = np.arange(len(rows))
    uar = np.array([float(r["uar"]) for r in rows])
    fig = _figure(7.5, 1.6 + 0.28 * len(rows))
    ax = fig.add_subplot()
    ax.barh(y, uar, color=[palette[str(r["corpus"])] for r in rows], height=0.75)
    for yi, r in zip(y, rows):
        ax.text(float(r["uar"]) + 0.01, yi, f"{float(r['uar']):.2f}" + (f" ({r['n']})" if r.get("n") else ""),
                va="center", fontsize=7)
    mean = float(uar.mean())
    ax.axvline(mean, color="black", linewidth=1.2, label=f"mean over speakers {mean:.3f}")
    ax.axvline(CHANCE, color="black", linestyle="--", linewidth=1, label=f"chance (1/{N_CLASSES})")
    ax.set_yticks(y, [str(r["speaker"]) for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("UAR on the held-out speaker (clips)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    handles = [Patch(color=palette[c], label=c) for c in corpora] + ax.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8, frameon=False)
    return fig


def plot_per_speaker(per_fold: Sequence[Mapping[str, Any]], path: Path | str,
                     title: str = "UAR per held-out speaker") -> Path:
    """`per_speaker_figure` written to `path` (e.g. from `summarize_folds(...)["per_fold"]`)."""
    return _save(per_speaker_figure(per_fold, title), path)


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
