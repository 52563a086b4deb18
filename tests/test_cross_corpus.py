"""Cross-corpus matrix, leave-one-corpus-out, and their table and figure, on two demo corpora."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import ser.train
from ser.cross_corpus import (as_matrix, cross_corpus_matrix, leave_one_corpus_out, loco_markdown, matrix_markdown,
                              plot_matrix, restricted_predictions, shared_emotions)

# corpus "acted" lacks surprise and disgust (like EmoDB without boredom, CREMA-D); "read" lacks fear
MISSING = {"acted": {"surprise", "disgust"}, "read": {"fear"}}


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory):
    from ser.demo import write_demo_corpus
    from ser.feature_table import FeatureSettings, plan_chunks, run_chunk
    from ser.ingest import ingest_corpus
    from ser.split import loso_folds

    base = tmp_path_factory.mktemp("cross")
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params = copy.deepcopy(params)
    params["features"]["opensmile"] = None
    params["augment"]["copies"] = 0
    frames, roots = [], {}
    for seed, name in enumerate(MISSING):
        root = base / name
        write_demo_corpus(root, speakers=8, utterances_per_emotion=1, seed=seed + 11)
        m = ingest_corpus(root, "folder", params["labels"]["folder"], name=name).manifest
        frames.append(m[~m["emotion"].isin(MISSING[name])])
        roots[name] = root
    manifest = pd.concat(frames, ignore_index=True).assign(split="test")
    manifest["fold"] = loso_folds(manifest)
    settings = FeatureSettings.from_params(params)
    for chunk in plan_chunks(manifest, settings, 200):
        run_chunk(chunk, manifest, roots, settings, base / "features")
    return base / "features", params, manifest


def test_shared_emotions_is_the_label_intersection_in_emotions_order():
    assert shared_emotions({"surprise", "sad", "angry", "happy"}, ["sad", "angry", "fear"]) == ["angry", "sad"]
    assert shared_emotions(["angry"], ["sad"]) == []
    with pytest.raises(ValueError, match="outside EMOTIONS"):
        shared_emotions(["boredom"], ["boredom"])


def test_restricted_predictions_pick_the_best_allowed_emotion():
    proba = np.zeros((2, 7))
    proba[0, [6, 5, 0]] = [0.7, 0.2, 0.1]  # surprise most likely, but not allowed
    proba[1, [0, 5]] = [0.6, 0.4]
    assert restricted_predictions(proba, ["angry", "sad"]).tolist() == ["sad", "angry"]


def test_matrix_scores_each_pair_on_shared_emotions(two_corpora, monkeypatch):
    features, params, manifest = two_corpora
    fitted = []
    real = ser.train.fit_and_score

    def spy(spec, training, seed, train, val, tests, norm=None):
        fitted.append(set(train.meta["corpus"]))
        return real(spec, training, seed, train, val, tests, norm=norm)

    monkeypatch.setattr(ser.train, "fit_and_score", spy)
    pairs = cross_corpus_matrix({"kind": "logistic", "C": 0.1, "max_iter": 500}, params, features, manifest, n_boot=100)
    assert fitted == [{"acted"}, {"read"}]  # one model per training corpus, trained on it alone
    assert pairs[["train", "test"]].values.tolist() == [["acted", "read"], ["read", "acted"]]
    shared = ["angry", "happy", "neutral", "sad"]  # acted: no surprise/disgust; read: no fear
    assert pairs["emotions"].tolist() == [",".join(shared)] * 2 and pairs["n_emotions"].tolist() == [4, 4]
    for row in pairs.itertuples():
        test = manifest[manifest["corpus"] == row.test]
        assert row.n == int(test["emotion"].isin(shared).sum()) and row.speakers == 8
        assert row.ci_low <= row.uar <= row.ci_high
    matrix = as_matrix(pairs, diagonal={"acted": 0.9})
    assert matrix.loc["acted", "read"] == pairs["uar"].iloc[0] and matrix.loc["acted", "acted"] == 0.9
    assert np.isnan(matrix.loc["read", "read"])
    text = matrix_markdown(pairs, diagonal={"acted": 0.9})
    assert "| acted | 0.900 (cv) | " + f"{pairs['uar'].iloc[0]:.3f} (4) |" in text
    assert "| read | " + f"{pairs['uar'].iloc[1]:.3f} (4) | – |" in text


def test_leave_one_corpus_out_and_figure(two_corpora, tmp_path):
    features, params, manifest = two_corpora
    loco = leave_one_corpus_out({"kind": "logistic", "C": 0.1, "max_iter": 500}, params, features, manifest, n_boot=100)
    assert loco["test"].tolist() == ["acted", "read"]
    # training on "read" alone (no fear) when "acted" is held out: fear clips of acted cannot be scored
    assert loco["emotions"].tolist() == ["angry,happy,neutral,sad", "angry,happy,neutral,sad"]
    assert loco["n"].tolist() == [int(manifest[(manifest["corpus"] == c) & manifest["emotion"].isin(
        ["angry", "happy", "neutral", "sad"])].shape[0]) for c in ("acted", "read")]
    assert "| acted | 8 | 32 | 4 | " in loco_markdown(loco)  # 8 speakers x 4 shared emotions
    pairs = pd.DataFrame([{"train": "acted", "test": "read", "uar": 0.5, "n_emotions": 4},
                          {"train": "read", "test": "acted", "uar": 0.4, "n_emotions": 4}])
    path = plot_matrix(pairs, tmp_path / "plots" / "cross_corpus.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
