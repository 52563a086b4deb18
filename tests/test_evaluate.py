"""ser.evaluate: numbers checked by hand, JSON-safety, fold summaries, and ranking by validation UAR only."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ser import EMOTIONS
from ser.evaluate import evaluate, flat_metrics, leaderboard, leaderboard_markdown, summarize_folds

# The hand-checked example. Labels: 0 angry, 1 disgust, 2 fear, 3 happy (4..6 absent).
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
Y_PRED = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
# Confusion (rows true, columns predicted):
#   true 0: [2, 1, 0, 0]   true 1: [0, 2, 0, 0]   true 2: [0, 0, 2, 2]   true 3: [0, 0, 0, 1]
# Recall:    0: 2/3   1: 2/2   2: 2/4   3: 1/1       -> UAR = (2/3 + 1 + 1/2 + 1) / 4 = 19/24 = 0.791667
# Precision: 0: 2/2   1: 2/3   2: 2/2   3: 1/3
# F1 = 2PR/(P+R): 0: 2(1)(2/3)/(5/3) = 0.8   1: 2(2/3)(1)/(5/3) = 0.8   2: 2(1)(1/2)/(3/2) = 2/3
#                 3: 2(1/3)(1)/(4/3) = 0.5   -> macro F1 = (0.8 + 0.8 + 2/3 + 0.5) / 4 = 83/120 = 0.691667
# Accuracy = 7/10.


def one_hot(labels, eps=0.0):
    proba = np.full((len(labels), len(EMOTIONS)), eps)
    proba[np.arange(len(labels)), labels] = 1.0
    return proba / proba.sum(axis=1, keepdims=True)


def approx(x):
    return pytest.approx(x, abs=1e-4)


@pytest.fixture
def example():
    return evaluate(Y_TRUE, one_hot(Y_PRED, eps=0.01))


def test_hand_checked_summary(example):
    assert example["uar"] == approx(19 / 24)
    assert example["uar"] == 0.7917  # rounded to 4 decimals
    assert example["accuracy"] == approx(0.7)
    assert example["macro_f1"] == approx(83 / 120)
    assert example["n"] == 10
    assert example["labels"] == list(EMOTIONS)


def test_hand_checked_per_class(example):
    pc = example["per_class"]
    assert list(pc) == list(EMOTIONS)
    expected = {  # precision, recall, f1, support
        "angry": (1.0, 2 / 3, 0.8, 3),
        "disgust": (2 / 3, 1.0, 0.8, 2),
        "fear": (1.0, 0.5, 2 / 3, 4),
        "happy": (1 / 3, 1.0, 0.5, 1),
    }
    for emotion, (p, r, f, s) in expected.items():
        assert pc[emotion]["precision"] == approx(p), emotion
        assert pc[emotion]["recall"] == approx(r), emotion
        assert pc[emotion]["f1"] == approx(f), emotion
        assert pc[emotion]["support"] == s
    for emotion in ("neutral", "sad", "surprise"):  # absent from y_true and y_pred: nothing is defined
        assert pc[emotion] == {"precision": None, "recall": None, "f1": None, "support": 0}


def test_hand_checked_confusion(example):
    confusion = example["confusion"]
    assert len(confusion) == 7 and all(len(row) == 7 for row in confusion)
    assert confusion[0][:4] == [2, 1, 0, 0]
    assert confusion[1][:4] == [0, 2, 0, 0]
    assert confusion[2][:4] == [0, 0, 2, 2]
    assert confusion[3][:4] == [0, 0, 0, 1]
    assert sum(map(sum, confusion)) == 10
    assert all(type(v) is int for row in confusion for v in row)


def test_labels_and_probabilities_agree(example):
    assert evaluate(Y_TRUE, np.array(Y_PRED)) == example


def test_json_strict_and_native_types(example):
    text = json.dumps(example, allow_nan=False)
    assert json.loads(text) == example


def test_by_corpus_grouping():
    corpus = np.array(["a"] * 5 + ["b"] * 5)
    result = evaluate(Y_TRUE, one_hot(Y_PRED), groups={"corpus": corpus, "speaker": np.arange(10) % 2})
    by = result["by_corpus"]
    assert list(by) == ["a", "b"]
    # a: true [0,0,0,1,1] pred [0,0,1,1,1]: recall 2/3, 1; F1 0.8, 0.8
    assert by["a"] == {"uar": approx(5 / 6), "accuracy": approx(0.8), "macro_f1": approx(0.8), "n": 5}
    # b: true [2,2,2,2,3] pred [2,2,3,3,3]: recall 1/2, 1; F1 2/3, 1/2
    assert by["b"] == {"uar": approx(0.75), "accuracy": approx(0.6), "macro_f1": approx(7 / 12), "n": 5}
    # speaker 0 = even rows: true [0,0,1,2,2] pred [0,1,1,2,3]: recall 1/2, 1, 1/2 -> 2/3
    assert set(result["by_speaker"]) == {"0", "1"}
    assert result["by_speaker"]["0"]["uar"] == approx(2 / 3)
    assert result["by_speaker"]["0"]["n"] == 5
    json.dumps(result, allow_nan=False)


def test_predicted_but_absent_class():
    # true has no "sad" (5), but the model predicts it once: sad has precision 0, recall None, F1 0;
    # UAR ignores sad (no recall), macro F1 counts it (y_true ∪ y_pred = {0, 5}).
    result = evaluate([0, 0, 0, 0], [0, 0, 0, 5])
    assert result["uar"] == approx(0.75)
    assert result["per_class"]["sad"] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    # angry: P = 1, R = 3/4, F1 = 6/7
    assert result["per_class"]["angry"]["f1"] == approx(6 / 7)
    assert result["macro_f1"] == approx((6 / 7 + 0) / 2)
    json.dumps(result, allow_nan=False)


def test_class_never_predicted_has_no_precision():
    result = evaluate([0, 1], [0, 0])
    assert result["per_class"]["disgust"] == {"precision": None, "recall": 0.0, "f1": 0.0, "support": 1}
    assert result["per_class"]["angry"]["precision"] == approx(0.5)


def test_single_class_y_true():
    result = evaluate([4, 4, 4, 4], [4, 4, 4, 1])
    assert result["uar"] == approx(0.75)
    assert result["accuracy"] == approx(0.75)
    assert result["per_class"]["neutral"]["support"] == 4
    assert result["confusion"][4][4] == 3 and result["confusion"][4][1] == 1
    json.dumps(result, allow_nan=False)


def test_argmax_ties_pick_first_class():
    proba = np.zeros((1, 7))
    proba[0, [2, 5]] = 0.5
    assert evaluate([2], proba)["accuracy"] == 1.0


@pytest.mark.parametrize("y_true, proba, match", [
    ([], np.zeros((0, 7)), "empty"),
    ([0, 1], np.zeros((3, 7)), "3 rows"),
    ([0, 7], [0, 1], "outside"),
    ([0, 1], np.zeros((2, 5)), r"\(n, 7\)"),
    ([0], np.full((1, 7), np.nan), "NaN"),
    (["angry"], [0], "integer"),
])
def test_bad_input(y_true, proba, match):
    with pytest.raises(ValueError, match=match):
        evaluate(y_true, proba)


def test_group_length_mismatch():
    with pytest.raises(ValueError, match="corpus"):
        evaluate(Y_TRUE, Y_PRED, groups={"corpus": ["a"] * 3})


def fold(uar, accuracy, f1, n, confusion=None, **extra):
    return {"uar": uar, "accuracy": accuracy, "macro_f1": f1, "n": n,
            "confusion": confusion, **extra}


def test_summarize_folds_mean_and_sample_std():
    eye = np.eye(7, dtype=int)
    c1 = (eye * 2).tolist()            # 14 clips, all right
    c2 = np.zeros((7, 7), dtype=int)
    c2[0, 1] = 2                        # 2 angry clips called disgust
    c2[0, 0] = 2
    folds = [fold(0.5, 0.6, 0.4, 10, c1, fold=0, speaker="s1", corpus="a"),
             fold(0.7, 0.6, 0.5, 20, c2.tolist(), fold=1, speaker="s2", corpus="a"),
             fold(0.9, 0.9, 0.9, 30, c1, fold=2, speaker="s3", corpus="b")]
    s = summarize_folds(folds)
    assert s["folds"] == 3 and s["n"] == 60
    # uar: mean 0.7; sample std sqrt((0.2^2 + 0 + 0.2^2) / 2) = 0.2
    assert s["uar_mean"] == approx(0.7) and s["uar_std"] == approx(0.2)
    # accuracy: mean 0.7; deviations -0.1, -0.1, 0.2 -> sqrt(0.06 / 2) = 0.173205
    assert s["accuracy_mean"] == approx(0.7) and s["accuracy_std"] == approx(np.sqrt(0.03))
    # macro_f1: mean 0.6; deviations -0.2, -0.1, 0.3 -> sqrt(0.14 / 2) = 0.264575
    assert s["macro_f1_mean"] == approx(0.6) and s["macro_f1_std"] == approx(np.sqrt(0.07))
    pooled = np.array(s["confusion"])
    assert pooled[0, 0] == 6 and pooled[0, 1] == 2 and pooled[1, 1] == 4 and pooled.sum() == 32
    # pooled recall: angry 6/8, every other class 4/4 -> (0.75 + 6) / 7
    assert s["uar_pooled"] == approx(6.75 / 7)
    assert s["per_fold"][1] == {"fold": 1, "speaker": "s2", "corpus": "a", "uar": 0.7, "accuracy": 0.6,
                                "macro_f1": 0.5, "n": 20}
    json.dumps(s, allow_nan=False)


def test_summarize_single_fold_has_zero_std_and_real_evaluations():
    s = summarize_folds([evaluate(Y_TRUE, Y_PRED)])
    assert s["folds"] == 1
    assert s["uar_mean"] == 0.7917 and s["uar_std"] == 0.0
    assert s["per_fold"][0]["fold"] == 0
    assert s["uar_pooled"] == approx(19 / 24)
    assert s["confusion"] == evaluate(Y_TRUE, Y_PRED)["confusion"]


def test_summarize_without_confusion_and_empty():
    s = summarize_folds([fold(0.5, 0.5, 0.5, 4), fold(0.6, 0.6, 0.6, 4)])
    assert s["confusion"] is None and s["uar_pooled"] is None
    with pytest.raises(ValueError):
        summarize_folds([])


def test_flat_metrics():
    corpus = np.array(["ravdess"] * 5 + ["tess"] * 5)
    m = evaluate(Y_TRUE, Y_PRED, groups={"corpus": corpus, "speaker": np.arange(10)})
    flat = flat_metrics({**m, "timings": {"train_s": 1.5, "other": 3}, "size_mb": 0.25})
    assert flat == {"uar": 0.7917, "accuracy": 0.7, "macro_f1": 0.6917, "n": 10,
                    "uar_ravdess": approx(5 / 6), "uar_tess": 0.75, "train_s": 1.5, "size_mb": 0.25}
    assert flat_metrics(evaluate(Y_TRUE, Y_PRED)) == {"uar": 0.7917, "accuracy": 0.7, "macro_f1": 0.6917, "n": 10}
    with pytest.raises(ValueError, match="uar"):
        flat_metrics({})


ROWS = [  # validation and test disagree on purpose: rank must follow validation
    {"model": "svc", "val_uar": 0.60, "test_uar": 0.80, "test_accuracy": 0.8, "test_macro_f1": 0.79,
     "train_s": 2.0, "predict_ms_per_clip": 0.1, "size_mb": 1.0},
    {"model": "cnn", "val_uar": 0.75, "test_uar": 0.55, "test_accuracy": 0.6, "test_macro_f1": 0.5,
     "train_s": 90.0, "predict_ms_per_clip": 3.0, "size_mb": 12.5},
    {"model": "rf", "val_uar": None, "test_uar": 0.99, "test_accuracy": 0.99, "test_macro_f1": 0.99,
     "train_s": 5.0, "predict_ms_per_clip": None, "size_mb": 40.0},
    {"model": "mlp", "val_uar": 0.70, "test_uar": 0.65, "test_accuracy": 0.66, "test_macro_f1": 0.6,
     "train_s": 10.0, "predict_ms_per_clip": 0.2, "size_mb": 0.5},
]


def test_leaderboard_ranks_by_validation_not_test():
    board = leaderboard(ROWS)
    assert isinstance(board, pd.DataFrame)
    assert board["model"].tolist() == ["cnn", "mlp", "svc", "rf"]  # by test it would be rf, svc, mlp, cnn
    assert list(board.index) == [0, 1, 2, 3]
    assert board.columns[0] == "model"
    assert np.isnan(board.loc[3, "val_uar"])
    assert board.loc[0, "test_uar"] == 0.55


def test_leaderboard_ties_keep_input_order_and_validation():
    rows = [{"model": "b", "val_uar": 0.5}, {"model": "a", "val_uar": 0.5}, {"model": "c", "val_uar": 0.6}]
    assert leaderboard(rows)["model"].tolist() == ["c", "b", "a"]
    with pytest.raises(ValueError):
        leaderboard([])
    with pytest.raises(ValueError, match="val_uar"):
        leaderboard([{"model": "x", "test_uar": 0.9}])


def test_leaderboard_markdown():
    text = leaderboard_markdown(leaderboard(ROWS))
    lines = text.strip().splitlines()
    assert "validation UAR" in lines[0] and "never" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    assert table[0].startswith("| # | model | val_uar | test_uar")
    assert len(table) == 2 + len(ROWS)
    assert table[2].startswith("| 1 | cnn | 0.7500 | 0.5500 |")
    assert table[-1].startswith("| 4 | rf | – | 0.9900 |")
    assert all(line.count("|") == table[0].count("|") for line in table)


def test_leaderboard_rows_carry_their_intervals_beside_the_score():
    rows = [{"model": "svc", "test_uar": 0.5, "val_method": "val split", "val_uar": 0.61, "val_uar_ci_high": 0.7,
             "val_uar_ci_low": 0.52, "val_speakers": 9},
            {"model": "logistic", "val_uar": 0.64, "val_uar_ci_low": 0.5, "val_uar_ci_high": 0.77,
             "val_method": "val split", "val_speakers": 9, "test_uar": 0.6}]
    board = leaderboard(rows)
    assert list(board.columns[:7]) == ["model", "val_uar", "val_uar_ci_low", "val_uar_ci_high", "val_method",
                                       "val_speakers", "test_uar"]
    table = [line for line in leaderboard_markdown(board).splitlines() if line.startswith("|")]
    assert table[2] == "| 1 | logistic | 0.6400 | 0.5000 | 0.7700 | val split | 9 | 0.6000 |"


def test_top_two_overlap_notes_indistinguishable_models():
    from ser.evaluate import top_two_overlap

    apart = leaderboard([{"model": "svc", "val_uar": 0.8, "val_uar_ci_low": 0.75, "val_uar_ci_high": 0.85},
                         {"model": "knn", "val_uar": 0.6, "val_uar_ci_low": 0.5, "val_uar_ci_high": 0.7}])
    assert top_two_overlap(apart) is False and "not distinguishable" not in leaderboard_markdown(apart)
    close = leaderboard([{"model": "svc", "val_uar": 0.8, "val_uar_ci_low": 0.7, "val_uar_ci_high": 0.9},
                         {"model": "knn", "val_uar": 0.75, "val_uar_ci_low": 0.62, "val_uar_ci_high": 0.71}])
    assert top_two_overlap(close) is True
    assert ("The top two (svc, knn) have overlapping validation intervals: not distinguishable on these "
            "speakers.") in leaderboard_markdown(close)
    assert top_two_overlap(leaderboard(ROWS)) is None  # no intervals: nothing to say
