"""Figures for `ser predict --plot`: a radar of the seven probabilities per file, or emotions over time.

Built on `matplotlib.figure.Figure` (Agg, no pyplot state) and written atomically (`ser.io.atomic_path`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import EMOTIONS
from ser.io import atomic_path

PROB_COLUMNS = [f"prob_{e}" for e in EMOTIONS]
MAX_RADARS = 12
DPI = 110
# one fixed colour per emotion, the same in every figure
COLORS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#ffbf00",
          "neutral": "#7f7f7f", "sad": "#1f77b4", "surprise": "#2ca02c"}


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


def plot_radars(df: pd.DataFrame, path: Path | str, title: str | None = None, max_plots: int = MAX_RADARS) -> Path:
    """One radar chart of the seven probabilities per file (rows of `predict_files`), in a grid.

    Files with an error are skipped; at most `max_plots` radars are drawn (the first ones), and the
    title says how many were left out. With no readable file the figure says so.
    """
    from matplotlib.figure import Figure

    good = df[df["error"].fillna("") == ""] if "error" in df else df
    shown = good.head(max_plots)
    n = len(shown)
    cols = min(4, max(1, n))
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(3.2 * cols, 3.3 * rows + 0.4), layout="constrained")
    angles = np.linspace(0, 2 * np.pi, len(EMOTIONS), endpoint=False)
    closed = np.concatenate([angles, angles[:1]])
    for i, row in enumerate(shown.itertuples(index=False)):
        r = row._asdict()
        values = np.array([r[c] for c in PROB_COLUMNS], dtype=float)
        ax = fig.add_subplot(rows, cols, i + 1, projection="polar")
        color = COLORS.get(r["emotion"], "#333333")
        ax.plot(closed, np.concatenate([values, values[:1]]), color=color, linewidth=1.5)
        ax.fill(closed, np.concatenate([values, values[:1]]), color=color, alpha=0.25)
        ax.set_xticks(angles, EMOTIONS, fontsize=7)
        ax.set_ylim(0, max(0.5, float(values.max()) * 1.05))
        ax.tick_params(axis="y", labelsize=6)
        ax.set_title(f"{_label(str(r.get('path', i)))}\n{r['emotion']} {r['confidence']:.2f}", fontsize=8)
    if n == 0:
        ax = fig.add_subplot(1, 1, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, "no readable file to plot", ha="center", va="center")
    left_out = len(good) - n
    heading = title or "emotion probabilities"
    if left_out > 0:
        heading += f" (first {n} of {len(good)} files)"
    fig.suptitle(heading, fontsize=10)
    return _save(fig, path)


def plot_timeline(df: pd.DataFrame, path: Path | str, title: str | None = None,
                  max_files: int = 6, stacked: bool = True) -> Path:
    """Emotion probabilities over time for each file of a segment table (`predict_files_segments`).

    Each window is drawn at its centre; `stacked` draws a stacked area (the seven add up to 1), else
    one line per emotion. One panel per file, the first `max_files` files.
    """
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
        if stacked:
            ax.stackplot(centre, probs, labels=EMOTIONS, colors=colors, alpha=0.85)
            ax.set_ylim(0, 1)
        else:
            for e, p, c in zip(EMOTIONS, probs, colors):
                ax.plot(centre, p, label=e, color=c, linewidth=1.4)
            ax.set_ylim(0, 1.02)
        ax.set_xlim(float(part["start_s"].min()), float(part["end_s"].max()))
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
    return _save(fig, path)
