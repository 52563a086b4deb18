"""ser.predict_plots: radars on one scale, a heatmap for many files, timeline axis on the data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ser import EMOTIONS
from ser.predict_plots import PROB_COLUMNS, plot_radars, plot_timeline, radar_limit, radars_figure, timeline_figure


def files(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(7) * 0.7, n)
    return pd.DataFrame({
        "path": [f"corpora/ravdess/Actor_{i % 24 + 1:02d}/03-01-0{i % 7 + 1}-01-02-01-{i % 24 + 1:02d}.wav"
                 for i in range(n)],
        "emotion": [EMOTIONS[int(a)] for a in p.argmax(1)], "confidence": p.max(1),
        **{c: p[:, j] for j, c in enumerate(PROB_COLUMNS)}, "error": ""})


def test_radars_share_one_radial_scale(tmp_path):
    df = files(5)
    fig = radars_figure(df)
    limits = {ax.get_ylim() for ax in fig.axes}
    assert len(limits) == 1
    top = df[PROB_COLUMNS].to_numpy().max()
    assert limits.pop() == (0.0, pytest.approx(radar_limit(df[PROB_COLUMNS].to_numpy())))
    assert radar_limit(np.array([[top]])) >= top
    assert radar_limit(np.array([[0.12]])) == 0.3 and radar_limit(np.array([[0.61]])) == 0.7
    assert radar_limit(np.array([[0.7]])) == 0.7
    assert plot_radars(df, tmp_path / "radars.png").is_file()


def test_more_files_than_radars_become_a_heatmap_of_every_file(tmp_path):
    df = files(30)
    df.loc[4, "error"] = "could not decode"
    fig = radars_figure(df, max_radars=12)
    ax = fig.axes[0]
    values = ax.images[0].get_array()
    good = df[df["error"] == ""]
    assert values.shape == (29, 7)  # all 29 readable files, not the first 12
    np.testing.assert_allclose(values, good[PROB_COLUMNS].to_numpy())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("Actor_01/03-01-01-01-02-01-01.wav")
    assert "(29 files)" in fig._suptitle.get_text()


def segments(start: float, n: int, window: float, hop: float) -> pd.DataFrame:
    p = np.full((n, 7), 1 / 7)
    starts = start + hop * np.arange(n)
    return pd.DataFrame({"path": "talk.wav", "segment": range(n), "start_s": starts, "end_s": starts + window,
                         "emotion": "neutral", "confidence": 1 / 7, **{c: p[:, j] for j, c in enumerate(PROB_COLUMNS)},
                         "error": ""})


def test_timeline_axis_spans_the_window_centres(tmp_path):
    fig = timeline_figure(segments(0.0, 10, window=3.0, hop=1.0))
    assert fig.axes[0].get_xlim() == (1.5, 10.5)  # first centre 1.5 s, last 9 + 1.5 s
    one = timeline_figure(segments(0.0, 1, window=3.0, hop=1.0))
    assert one.axes[0].get_xlim() == (0.0, 3.0)
    assert plot_timeline(segments(0.0, 10, 3.0, 1.0), tmp_path / "timeline.png").is_file()
