"""ser.split_report: the split summary and the splits figure."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ser import EMOTIONS
from ser import EMOTION_COLORS as COLORS
from ser.split_report import plot_splits, splits_figure

CORPORA = ["casia", "cremad", "emodb", "esd", "ravdess", "savee", "tess"]


def manifest() -> pd.DataFrame:
    rows = []
    for c in CORPORA:
        for speaker, split in enumerate(["train", "train", "val", "test"]):
            for e in EMOTIONS:
                rows += [{"corpus": c, "speaker": f"{c}:{speaker}", "split": split, "emotion": e}] * (speaker + 1)
    return pd.DataFrame(rows)


def test_seven_corpora_wrap_into_a_grid_not_a_strip(tmp_path):
    fig = splits_figure(manifest())
    width, height = fig.get_size_inches()
    assert width / height < 3  # was 29 x 3.6 inches (3190 x 396 px) for seven corpora
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(" ")[0] for ax in panels] == CORPORA
    rows = {round(ax.get_position().y0, 3) for ax in panels}
    assert len(rows) == 2


def test_bars_count_utterances_in_fixed_emotion_colours(tmp_path):
    fig = splits_figure(manifest())
    ax = fig.axes[0]
    # each split: 7 stacked bars (one per emotion); train = speakers 0 and 1 -> 1 + 2 clips per emotion
    heights = np.array([b.get_height() for b in ax.patches]).reshape(len(EMOTIONS), 3)
    assert heights[:, 0].tolist() == [3] * 7 and heights[:, 1].tolist() == [3] * 7 and heights[:, 2].tolist() == [4] * 7
    from matplotlib.colors import to_rgba

    assert [ax.patches[3 * i].get_facecolor() for i in range(7)] == [to_rgba(COLORS[e]) for e in EMOTIONS]
    out = plot_splits(manifest(), tmp_path / "splits.png")
    import matplotlib.image as mpimg

    image = mpimg.imread(out)
    assert image.shape[1] / image.shape[0] < 3
