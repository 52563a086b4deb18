"""Figures for `ser predict --plot`: a radar of the seven probabilities per file, or emotions over time.

Built on `matplotlib.figure.Figure` (Agg, no pyplot state) and written atomically (`ser.io.atomic_path`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import EMOTION_COLORS, EMOTIONS
from ser.io import atomic_path

PROB_COLUMNS = [f"prob_{e}" for e in EMOTIONS]
MAX_RADARS = 12
DPI = 110
COLORS = EMOTION_COLORS


def _save(fig: Any, path: Path | str) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"--plot must end in .png, not {path.suffix!r}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _label(path: str, width: int = 28) -> str:
    name = Path(path).name
    return name if len(name) <= width else "..." + name[-(width - 3):]


def radar_limit(values: np.ndarray) -> float:
    """One radial scale for every radar of a figure: the largest probability, rounded up to 0.1 (>= 0.3)."""
    top = float(np.nanmax(values)) if np.size(values) else 0.0
    return min(1.0, max(0.3, math.ceil(top * 10 - 1e-9) / 10))


def radars_figure(df: pd.DataFrame, title: str | None = None, max_radars: int = MAX_RADARS) -> Any:
    """Up to `max_radars` files: one radar per file, all on one radial scale so shapes compare. More
    files: one heatmap row per file (every file, nothing left out), labelled as the table labels them."""
    from matplotlib.figure import Figure

    from ser.predict import display_paths

    good = df[df["error"].fillna("") == ""] if "error" in df else df
    n = len(good)
    labels = display_paths([str(p) for p in good["path"]], 40) if "path" in good else [str(i) for i in range(n)]
    values = good[PROB_COLUMNS].to_numpy(float) if n else np.zeros((0, len(EMOTIONS)))
    heading = title or "emotion probabilities"
    if n == 0:
        fig = Figure(figsize=(4, 2), layout="constrained")
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no readable file to plot", ha="center", va="center")
    elif n > max_radars:
        fig = Figure(figsize=(8.5, 1.4 + 0.24 * n), layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(values, cmap="magma", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=30, ha="right")
        ax.set_yticks(range(n), [f"{lab}  {e}" for lab, e in zip(labels, good["emotion"])], fontsize=7)
        ax.xaxis.tick_top()
        fig.colorbar(image, ax=ax, label="probability", shrink=0.6)
        heading += f" ({n} files)"
    else:
        cols = min(4, n)
        rows = math.ceil(n / cols)
        fig = Figure(figsize=(3.2 * cols, 3.3 * rows + 0.5), layout="constrained")
        angles = np.linspace(0, 2 * np.pi, len(EMOTIONS), endpoint=False)
        closed = np.concatenate([angles, angles[:1]])
        limit = radar_limit(values)
        for i, (label, row, r) in enumerate(zip(labels, values, good.to_dict("records"))):
            ax = fig.add_subplot(rows, cols, i + 1, projection="polar")
            color = COLORS.get(r["emotion"], "#333333")
            ax.plot(closed, np.concatenate([row, row[:1]]), color=color, linewidth=1.5)
            ax.fill(closed, np.concatenate([row, row[:1]]), color=color, alpha=0.25)
            ax.set_xticks(angles, EMOTIONS, fontsize=7)
            ax.set_ylim(0, limit)
            ax.tick_params(axis="y", labelsize=6)
            ax.set_title(f"{label}\n{r['emotion']} {r['confidence']:.2f}", fontsize=8)
        heading += f" (radius 0 to {limit:g} in every chart)"
    fig.suptitle(heading, fontsize=10)
    return fig


def plot_radars(df: pd.DataFrame, path: Path | str, title: str | None = None, max_plots: int = MAX_RADARS) -> Path:
    """`radars_figure` of `predict_files` rows (files with an error are skipped) written to `path`."""
    return _save(radars_figure(df, title, max_plots), path)


def plot_timeline(df: pd.DataFrame, path: Path | str, title: str | None = None,
                  max_files: int = 6, stacked: bool = True) -> Path:
    """Emotion probabilities over time for each file of a segment table (`predict_files_segments`).

    Each window is drawn at its centre and the x-axis spans the first to the last centre (no empty
    margin before the first window's centre); `stacked` draws a stacked area (the seven add up to 1),
    else one line per emotion. One panel per file, the first `max_files` files.
    """
    return _save(timeline_figure(df, title, max_files, stacked), path)


def timeline_figure(df: pd.DataFrame, title: str | None = None, max_files: int = 6, stacked: bool = True) -> Any:
    """The figure `plot_timeline` writes."""
    from matplotlib.figure import Figure

    good = df[df["error"].fillna("") == ""] if "error" in df else df
    if "path" not in good:
        good = good.assign(path="audio")
    files = list(dict.fromkeys(good["path"]))[:max_files]
    n = max(1, len(files))
    fig = Figure(figsize=(9, 2.4 * n + 0.6), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, files):
        part = good[good["path"] == name].sort_values("start_s")
        centre = ((part["start_s"] + part["end_s"]) / 2).to_numpy(float)
        probs = part[PROB_COLUMNS].to_numpy(float).T
        colors = [COLORS[e] for e in EMOTIONS]
        if len(centre) == 1:  # a single window: show it as a flat band over its span
            centre = part[["start_s", "end_s"]].to_numpy(float)[0]
            probs = np.repeat(probs, 2, axis=1)
        ax.set_xlim(float(centre[0]), float(centre[-1]))
        if stacked:
            ax.stackplot(centre, probs, labels=EMOTIONS, colors=colors, alpha=0.85)
            ax.set_ylim(0, 1)
        else:
            for e, p, c in zip(EMOTIONS, probs, colors):
                ax.plot(centre, p, label=e, color=c, linewidth=1.4)
            ax.set_ylim(0, 1.02)
        ax.set_ylabel("probability")
        ax.set_title(_label(str(name), 60), fontsize=9)
        ax.grid(alpha=0.3)
    if not files:
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, "no readable file to plot", ha="center", va="center")
    else:
        axes[-1].set_xlabel("time (s, window centres)")
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.suptitle(title or "emotion over time", fontsize=10)
    return fig
