"""ser.plots: PNGs are real, complete images written atomically; CSVs have the columns DVC expects."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser import EMOTIONS
from ser.evaluate import leaderboard
from ser.plots import (
    NO_TEST_SPEAKERS,
    confusion_grid_figure,
    confusions_by_corpus,
    distinct_colors,
    per_corpus_figure,
    per_speaker_figure,
    plot_confusion,
    plot_confusions_by_corpus,
    plot_per_speaker,
    plot_history,
    plot_leaderboard,
    plot_per_corpus,
    write_history_csv,
    write_predictions_csv,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_side: int = 200) -> np.ndarray:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    import matplotlib.image as mpimg

    image = mpimg.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) >= min_side
    assert image[..., :3].std() > 0.01  # not a blank canvas
    return image


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def confusion_example() -> list[list[int]]:
    rng = np.random.default_rng(0)
    m = rng.integers(0, 4, size=(7, 7))
    m += np.diag(rng.integers(10, 30, size=7))
    m[6] = 0  # a class with no clips: its row stays blank, no division by zero
    return m.tolist()


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion(tmp_path, normalize):
    out = plot_confusion(confusion_example(), tmp_path / "sub" / "confusion.png", title="test", normalize=normalize)
    assert out == tmp_path / "sub" / "confusion.png"
    assert_png(out)
    assert no_temp_files(out.parent)


def test_plot_confusion_replaces_existing_file_and_rejects_bad_shape(tmp_path):
    path = tmp_path / "c.png"
    path.write_bytes(b"old")
    plot_confusion(confusion_example(), path, title="again")
    assert_png(path)
    with pytest.raises(ValueError, match="7x7"):
        plot_confusion(np.zeros((3, 3)), tmp_path / "bad.png", title="bad")
    assert not (tmp_path / "bad.png").exists()
    assert no_temp_files(tmp_path)


KERAS_HISTORY = {
    "loss": [1.9, 1.5, 1.2, 1.0, 0.9],
    "val_loss": [1.95, 1.6, 1.4, 1.45, 1.5],
    "accuracy": [0.2, 0.35, 0.5, 0.6, 0.65],
    "val_accuracy": [0.2, 0.3, 0.4, 0.38, 0.37],
    "lr": [1e-3, 1e-3, 5e-4, 2.5e-4, 1e-5],
}


@pytest.mark.parametrize("keys", [
    list(KERAS_HISTORY),
    ["loss"],
    ["val_accuracy", "lr"],
    ["loss", "val_loss", "uar", "val_uar"],
])
def test_plot_history_any_subset(tmp_path, keys):
    history = {k: KERAS_HISTORY.get(k, [0.3, 0.4, 0.5]) for k in keys}
    out = plot_history(history, tmp_path / "history.png", title="curves")
    assert out == tmp_path / "history.png"
    assert_png(out)
    assert no_temp_files(tmp_path)


def test_plot_history_panels_scale_with_metrics(tmp_path):
    one = assert_png(plot_history({"loss": [1, 0.5]}, tmp_path / "one.png", title="x"))
    three = assert_png(plot_history(KERAS_HISTORY, tmp_path / "three.png", title="x"))
    assert three.shape[1] > 2 * one.shape[1]  # loss, accuracy and lr panels side by side


@pytest.mark.parametrize("empty", [{}, {"loss": []}])
def test_plot_history_empty_writes_nothing(tmp_path, empty):
    assert plot_history(empty, tmp_path / "history.png", title="sklearn") is None
    assert list(tmp_path.iterdir()) == []


def test_plot_history_empty_removes_stale_plot(tmp_path):
    path = tmp_path / "history.png"
    plot_history(KERAS_HISTORY, path, title="old keras run")
    assert path.exists()
    assert plot_history({}, path, title="now sklearn") is None
    assert not path.exists()


def test_plot_leaderboard(tmp_path):
    board = leaderboard([
        {"model": "svc", "val_uar": 0.6, "test_uar": 0.8},
        {"model": "cnn_lstm", "val_uar": 0.75, "test_uar": 0.55},
        {"model": "rf", "val_uar": None, "test_uar": 0.5},
    ])
    out = plot_leaderboard(board, tmp_path / "leaderboard.png")
    assert_png(out)
    # any row order is accepted (re-sorted by val_uar inside)
    assert_png(plot_leaderboard(board.iloc[::-1], tmp_path / "reversed.png"))
    assert no_temp_files(tmp_path)
    with pytest.raises(ValueError):
        plot_leaderboard(board.iloc[:0], tmp_path / "empty.png")


def test_plot_per_corpus(tmp_path):
    out = plot_per_corpus({"svc": {"ravdess": 0.6, "tess": 0.9, "cremad": 0.4},
                           "cnn": {"ravdess": 0.7, "tess": 0.95}}, tmp_path / "per_corpus.png")
    assert_png(out)
    assert no_temp_files(tmp_path)
    with pytest.raises(ValueError):
        plot_per_corpus({}, tmp_path / "none.png")


def test_write_predictions_csv(tmp_path):
    out = write_predictions_csv(tmp_path / "p" / "predictions.csv", np.array([0, 3, 6]), ["angry", "sad", "surprise"])
    text = out.read_text().splitlines()
    assert text == ["actual,predicted", "angry,angry", "happy,sad", "surprise,surprise"]
    assert no_temp_files(out.parent)
    with pytest.raises(ValueError):
        write_predictions_csv(tmp_path / "bad.csv", [7], [0])
    with pytest.raises(ValueError):
        write_predictions_csv(tmp_path / "bad.csv", [0, 1], [0])
    assert not (tmp_path / "bad.csv").exists()


def test_write_history_csv(tmp_path):
    out = write_history_csv(tmp_path / "history.csv", {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6]})
    df = pd.read_csv(out)
    assert list(df.columns) == ["epoch", "loss", "val_loss"]
    assert df["epoch"].tolist() == [1, 2, 3]
    assert df["loss"].tolist() == [1.0, 0.5, 0.25]
    assert df["val_loss"].iloc[:2].tolist() == [1.1, 0.6] and np.isnan(df["val_loss"].iloc[2])
    assert no_temp_files(tmp_path)


def test_write_history_csv_empty_is_header_only(tmp_path):
    out = write_history_csv(tmp_path / "history.csv", {})
    assert out.read_text().strip() == "epoch"


def test_emotion_order_is_the_package_order():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def test_per_corpus_is_a_model_by_corpus_table_that_keeps_unscored_corpora(tmp_path):
    scores = {f"model{i:02d}": {"ravdess": 0.5 + i / 100, "tess": 0.9 - i / 100} for i in range(14)}
    fig = per_corpus_figure(scores, corpora=["ravdess", "savee", "tess"])
    ax = fig.axes[0]
    values = ax.images[0].get_array()
    assert values.shape == (14, 3)  # every model a row: nothing depends on 14 distinct bar colours
    assert values[3, 0] == pytest.approx(0.53) and values[3, 2] == pytest.approx(0.87)
    assert bool(values.mask[:, 1].all())  # savee: no model scored, column kept and masked
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["ravdess", f"savee\n({NO_TEST_SPEAKERS})", "tess"]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(scores)
    assert {t.get_text() for t in ax.texts} >= {"0.53", "0.87"}
    assert_png(plot_per_corpus(scores, tmp_path / "per_corpus.png", corpora=["ravdess", "savee", "tess"]))


@pytest.mark.parametrize("n", [3, 14, 20, 30])
def test_distinct_colors_never_repeat(n):
    assert len(set(distinct_colors(n))) == n


def test_per_speaker_bars_are_the_scores_coloured_by_corpus(tmp_path):
    folds = [{"speaker": "ravdess:01", "corpus": "ravdess", "uar": 0.41, "n": 56},
             {"speaker": "ravdess:02", "corpus": "ravdess", "uar": 0.73, "n": 56},
             {"speaker": "emodb:03", "corpus": "emodb", "uar": 0.62, "n": 49},
             {"speaker": "tess:OAF", "uar": 0.95}]  # corpus from the speaker prefix
    fig = per_speaker_figure(folds)
    ax = fig.axes[0]
    bars = ax.patches
    assert [b.get_width() for b in bars] == pytest.approx([0.62, 0.73, 0.41, 0.95])  # by corpus, best first
    assert [t.get_text() for t in ax.get_yticklabels()] == ["emodb:03", "ravdess:02", "ravdess:01", "tess:OAF"]
    colours = [b.get_facecolor() for b in bars]
    assert colours[1] == colours[2] and len({colours[0], colours[1], colours[3]}) == 3
    mean_line = ax.lines[0].get_xdata()[0]
    assert mean_line == pytest.approx((0.41 + 0.73 + 0.62 + 0.95) / 4)
    assert_png(plot_per_speaker(folds, tmp_path / "per_speaker.png"))
    with pytest.raises(ValueError):
        per_speaker_figure([])


def test_confusions_by_corpus_counts_each_corpus_apart(tmp_path):
    y_true = ["angry", "angry", "sad", "sad", "happy", "angry"]
    y_pred = ["angry", "sad", "sad", "sad", "angry", "angry"]
    corpus = ["ravdess", "ravdess", "ravdess", "tess", "tess", "tess"]
    got = confusions_by_corpus(y_true, y_pred, corpus)
    a, s, h = EMOTIONS.index("angry"), EMOTIONS.index("sad"), EMOTIONS.index("happy")
    r, t = np.array(got["ravdess"]), np.array(got["tess"])
    assert r.sum() == 3 and r[a, a] == 1 and r[a, s] == 1 and r[s, s] == 1
    assert t.sum() == 3 and t[s, s] == 1 and t[h, a] == 1 and t[a, a] == 1
    fig = confusion_grid_figure(got)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2
    np.testing.assert_allclose(images[0].get_array()[EMOTIONS.index("angry")][[a, s]], [0.5, 0.5])
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["ravdess: UAR 0.750, 3 clips", "tess: UAR 0.667, 3 clips"]  # happy -> angry: recall 0
    assert_png(plot_confusions_by_corpus(got, tmp_path / "confusion_by_corpus.png"))
