"""Summaries and plots people look at: utterances per split, corpus and emotion."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ser import EMOTION_COLORS, EMOTIONS
from ser.split import SPLITS


def split_summary(manifest: pd.DataFrame, quarantine: pd.DataFrame) -> dict[str, Any]:
    """Counts for metrics/manifest.json: utterances, speakers and hours per split, quarantined by kind."""
    splits = {}
    for split in SPLITS:
        part = manifest[manifest["split"] == split]
        splits[split] = {
            "speakers": int(part["speaker"].nunique()),
            "utterances": len(part),
            "hours": round(float(part["duration_s"].sum()) / 3600, 4),
        }
    return {
        "utterances": len(manifest),
        "speakers": int(manifest["speaker"].nunique()),
        "quarantined": {str(k): int(v) for k, v in quarantine["kind"].value_counts().sort_index().items()},
        "splits": splits,
    }


def splits_figure(manifest: pd.DataFrame, cols: int = 4) -> Any:
    """Stacked bars of utterances per emotion for each split, one panel per corpus, at most `cols`
    panels across (more corpora wrap onto further rows), each emotion in its fixed colour."""
    from matplotlib.figure import Figure


    names = sorted(manifest["corpus"].unique())
    if not names:
        raise ValueError("empty manifest: no corpus to plot")
    cols = min(cols, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(3.4 * cols + 1.6, 3.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.axis("off")
            continue
        name = names[k]
        part = manifest[manifest["corpus"] == name]
        counts = pd.crosstab(part["split"], part["emotion"]).reindex(index=list(SPLITS), columns=list(EMOTIONS),
                                                                     fill_value=0)
        bottom = [0] * len(SPLITS)
        for emotion in EMOTIONS:
            ax.bar(range(len(SPLITS)), counts[emotion], bottom=bottom, color=EMOTION_COLORS[emotion], label=emotion)
            bottom = [b + v for b, v in zip(bottom, counts[emotion])]
        speakers = part.groupby("split")["speaker"].nunique().reindex(list(SPLITS), fill_value=0)
        ax.set_xticks(range(len(SPLITS)), [f"{s}\n{speakers[s]} spk" for s in SPLITS])
        ax.set_title(f"{name} ({len(part)} utterances)", fontsize=10)
        if k % cols == 0:
            ax.set_ylabel("utterances")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", frameon=False)
    return fig


def plot_splits(manifest: pd.DataFrame, path: Path | str) -> Path:
    """`splits_figure` written atomically to `path`."""
    from ser.io import atomic_path

    fig = splits_figure(manifest)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
