"""Summaries and plots people look at: utterances per split, corpus and emotion."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ser import EMOTIONS
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


def plot_splits(manifest: pd.DataFrame, path: Path | str) -> Path:
    """Stacked bars of utterances per emotion for each split, one panel per corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ser.io import atomic_path

    names = sorted(manifest["corpus"].unique())
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names) + 1, 3.6), squeeze=False, sharey=False)
    for ax, name in zip(axes[0], names):
        part = manifest[manifest["corpus"] == name]
        counts = pd.crosstab(part["split"], part["emotion"]).reindex(index=list(SPLITS), columns=list(EMOTIONS), fill_value=0)
        counts.plot.bar(stacked=True, ax=ax, legend=False, rot=0, colormap="tab10")
        speakers = part.groupby("split")["speaker"].nunique().reindex(list(SPLITS), fill_value=0)
        ax.set_xticklabels([f"{s}\n{speakers[s]} spk" for s in SPLITS])
        ax.set_title(name)
        ax.set_xlabel("")
    axes[0][0].set_ylabel("utterances")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", frameon=False)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
