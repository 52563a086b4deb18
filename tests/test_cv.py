"""Speaker-grouped k-fold CV: fold assignment as a property, the runner on the demo corpus and on real speakers."""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ser.train
from ser.cv import cross_validate, plot_cv, selection_score, speaker_folds, write_cv
from ser.stats import uar

speaker_lists = st.lists(
    st.tuples(st.sampled_from(["cremad", "ravdess", "emodb", "tess"]), st.sampled_from(["female", "male", "unknown"])),
    min_size=2, max_size=80)


@settings(max_examples=80, deadline=None)
@given(speakers=speaker_lists, k=st.integers(2, 10), seed=st.integers(0, 2**31))
def test_every_speaker_in_exactly_one_fold_and_folds_balanced(speakers, k, seed):
    df = pd.DataFrame([{"speaker": f"{c}:s{i}", "corpus": c, "gender": g} for i, (c, g) in enumerate(speakers)])
    # several clips per speaker must not change the assignment
    clips = pd.concat([df, df], ignore_index=True)
    folds = speaker_folds(clips, k, seed)
    assert sorted(folds.index) == sorted(df["speaker"])  # each speaker exactly once
    n_folds = min(k, len(df))
    assert set(folds) == set(range(n_folds))  # every fold tests someone
    assigned = df.assign(fold=df["speaker"].map(folds))
    for keys in (["corpus", "gender"], ["corpus"], []):
        groups = assigned.groupby(keys) if keys else [((), assigned)]
        for _, part in groups:
            sizes = part["fold"].value_counts().reindex(range(n_folds), fill_value=0)
            assert sizes.max() - sizes.min() <= 1, (keys, sizes.to_dict())
    assert folds.equals(speaker_folds(df, k, seed))


def test_loso_and_errors():
    df = pd.DataFrame({"speaker": ["a:1", "a:2", "b:3"], "corpus": ["a", "a", "b"], "gender": ["male"] * 3})
    assert sorted(speaker_folds(df, None).tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="k >= 2"):
        speaker_folds(df, 1)
    with pytest.raises(ValueError, match="at least two speakers"):
        speaker_folds(df.iloc[:1], 5)
    with pytest.raises(ValueError, match="gender"):
        speaker_folds(df.drop(columns="gender"))


@pytest.fixture
def spy_training(monkeypatch):
    """Records (train speakers, test speakers) of every fit, through the real fit_and_score."""
    calls = []
    real = ser.train.fit_and_score

    def spy(spec, training, seed, train, val, tests, norm=None):
        calls.append((set(train.meta["speaker"]), set(tests["test"].meta["speaker"]),
                      set(val.meta["speaker"]) if val is not None else set()))
        return real(spec, training, seed, train, val, tests, norm=norm)

    monkeypatch.setattr(ser.train, "fit_and_score", spy)
    return calls


def test_cross_validate_demo(tiny_features, plain_params, spy_training, tmp_path):
    features, _, manifest = tiny_features
    report, pred = cross_validate("logistic", {"kind": "logistic", "C": 0.1, "max_iter": 500}, plain_params,
                                  features, manifest, k=4, n_boot=200)
    # every original clip is predicted once, each speaker by a model that never heard it
    assert sorted(pred["utt_id"]) == sorted(manifest["utt_id"])
    assert len(spy_training) == 4
    for train_speakers, test_speakers, _ in spy_training:
        assert train_speakers.isdisjoint(test_speakers) and len(test_speakers) == 2
    assert set().union(*(t for _, t, _ in spy_training)) == set(manifest["speaker"])
    assert report["k"] == 4 and report["protocol"] == "speaker-grouped 4-fold"
    assert report["n"] == len(manifest) and report["n_speakers"] == 8
    demo = report["uar_by_corpus"]["demo"]
    assert demo["uar"] == round(uar(pred["actual"], pred["predicted"]), 4)
    assert demo["ci"][0] <= demo["uar"] <= demo["ci"][1] and demo["speakers"] == 8
    assert report["uar_corpus_mean"]["uar"] == demo["uar"]  # one corpus: the mean is its UAR
    assert demo["uar"] > 1 / 7  # the demo's emotions are synthetic and separable
    genders = manifest.groupby("speaker")["gender"].first()
    assert set(report["by_gender"]) == set(genders)
    assert [s["speaker"] for s in report["per_speaker"]] == sorted(manifest["speaker"].unique())
    for row in report["per_speaker"]:
        part = pred[pred["speaker"] == row["speaker"]]
        assert row["uar"] == round(uar(part["actual"], part["predicted"]), 4) and row["fold"] == part["fold"].iloc[0]
    assert sorted(s for f in report["per_fold"] for s in f["speakers"]) == sorted(manifest["speaker"].unique())
    path = write_cv(report, tmp_path / "cv" / "logistic.json", pred)
    assert json.loads(path.read_text())["uar_corpus_mean"] == report["uar_corpus_mean"]
    json.dumps(report, allow_nan=False)
    assert len(pd.read_parquet(tmp_path / "cv" / "logistic.predictions.parquet")) == len(pred)
    figure = plot_cv(report, tmp_path / "plots" / "cv.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_selection_score_never_sees_test_speakers(tiny_features, plain_params, spy_training):
    features, _, manifest = tiny_features
    spec = {"kind": "logistic", "C": 0.1, "max_iter": 500}
    by_split = manifest.groupby("split")["speaker"].unique()
    held_out = set(by_split["test"])
    # two validation speakers (< 8): inner CV over the four train speakers
    inner = selection_score(spec, plain_params, features, manifest, k=4, n_boot=100)
    assert inner["val_method"].startswith("inner speaker-grouped 4-fold") and inner["val_speakers"] == 4
    assert inner["val_uar_ci_low"] <= inner["val_uar"] <= inner["val_uar_ci_high"]
    for train_speakers, test_speakers, _ in spy_training:
        assert (train_speakers | test_speakers) <= set(by_split["train"])
    spy_training.clear()
    # with the threshold at two, the val split scores it
    val = selection_score(spec, plain_params, features, manifest, min_val_speakers=2, n_boot=100)
    assert val["val_method"] == "val split" and val["val_speakers"] == 2
    ((train_speakers, test_speakers, _),) = spy_training
    assert test_speakers == set(by_split["val"]) and train_speakers == set(by_split["train"])
    assert not (train_speakers | test_speakers) & held_out


@pytest.mark.shared
def test_cross_validate_real_subset(shared_corpora, tmp_path):
    """Four RAVDESS actors and both EmoDB speakers, through ingest, features and 3-fold CV."""
    import yaml

    from ser.feature_table import FeatureSettings, plan_chunks, run_chunk
    from ser.ingest import ingest_corpus
    from ser.split import loso_folds

    params = yaml.safe_load((ser.train.Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params = copy.deepcopy(params)
    params["features"]["opensmile"] = None
    params["augment"]["copies"] = 0
    frames = []
    for name in ("ravdess", "emodb"):
        m = ingest_corpus(shared_corpora / name, name, params["labels"][name], name=name, workers=1).manifest
        keep = sorted(m["speaker"].unique())[:4]
        frames.append(m[m["speaker"].isin(keep)])
    # CV ignores the holdout split; every clip is labelled test so no augmented copies are made
    manifest = pd.concat(frames, ignore_index=True).assign(split="test")
    manifest["fold"] = loso_folds(manifest)
    settings = FeatureSettings.from_params(params)
    roots = {"ravdess": shared_corpora / "ravdess", "emodb": shared_corpora / "emodb"}
    for chunk in plan_chunks(manifest, settings, 200):
        run_chunk(chunk, manifest, roots, settings, tmp_path / "features")
    report, pred = cross_validate("logistic", params["models"]["logistic"], params, tmp_path / "features", manifest,
                                  k=3, n_boot=200)
    assert report["corpora"] == ["emodb", "ravdess"] and report["n_speakers"] == 6
    assert {c: v["speakers"] for c, v in report["uar_by_corpus"].items()} == {"emodb": 2, "ravdess": 4}
    assert len(pred) == len(manifest)
    # EmoDB 03 male / 09 female and RAVDESS odd/even actors: both corpora have both genders
    assert report["gender_gap"]["corpora"] == ["emodb", "ravdess"]
    assert report["uar_corpus_mean"]["uar"] == pytest.approx(
        np.mean([v["uar"] for v in report["uar_by_corpus"].values()]), abs=1e-4)
    assert report["uar_corpus_mean"]["uar"] > 1 / 7
