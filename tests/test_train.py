"""Training on speaker-independent splits: no test speaker in training, metrics on originals only."""
import numpy as np
import pytest

from ser.feature_table import FeatureSettings
from ser.train import balanced_weights, holdout, load_table, train_holdout, train_loso


def test_holdout_keeps_test_speakers_and_augmentation_apart(tiny_features):
    features, params, manifest = tiny_features
    table = load_table(features, "pooled", FeatureSettings.from_params(params).features, manifest)
    train, val, test = holdout(table)
    assert set(train.meta["speaker"]).isdisjoint(test.meta["speaker"])
    assert set(train.meta["speaker"]).isdisjoint(val.meta["speaker"])
    assert not test.meta["augmented"].any() and not val.meta["augmented"].any()
    assert train.meta["augmented"].sum() == (~train.meta["augmented"]).sum()  # one copy per train clip
    assert len(test) == (manifest["split"] == "test").sum()


def test_subsample_keeps_each_class_and_its_copies(tiny_features):
    from ser.train import subsample

    features, params, manifest = tiny_features
    train, _, _ = holdout(load_table(features, "pooled", FeatureSettings.from_params(params).features, manifest))
    small = subsample(train, 0.1, seed=0)
    originals = small.meta[~small.meta["augmented"]]
    assert set(small.y) == set(train.y)  # at least one clip per emotion
    assert len(originals) == 7  # 10% of 2-4 clips per class rounds to the minimum of one
    assert set(small.meta["source"]) == set(originals["utt_id"])  # copies follow their source
    assert subsample(train, 1.0, seed=0) is train
    with pytest.raises(ValueError, match="train.fraction"):
        subsample(train, 0.0, seed=0)


def test_balanced_weights():
    w = balanced_weights(np.array([0, 0, 0, 1]))
    assert w.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0])


def test_train_holdout_scores_val_and_test(tiny_features):
    features, params, manifest = tiny_features
    artifact, result, history = train_holdout("logistic", {"kind": "logistic", "C": 1.0}, params, features, manifest)
    assert set(result["scores"]) == {"val", "test"}
    test = result["scores"]["test"]
    assert 0 <= test["uar"] <= 1 and np.array(test["confusion"]).sum() == test["n"]
    assert result["data"]["test"]["augmented_rows"] == 0
    assert history == {} and artifact.info["metrics"]["test"]["uar"] == test["uar"]
    assert len(result["predictions"]["test"]) == test["n"]


def test_loso_tests_every_speaker_once(tiny_features):
    features, params, manifest = tiny_features
    seen = []
    summary = train_loso({"kind": "logistic"}, params, features, manifest, on_fold=lambda i, n, s, u: seen.append(s))
    assert summary["folds"] == manifest["speaker"].nunique() == len(seen) == len(set(seen))
    assert 0 <= summary["uar_mean"] <= 1 and summary["uar_std"] >= 0
    assert sum(f["n"] for f in summary["per_fold"]) == len(manifest)  # originals only, each once
    assert summary["uar_corpus_mean"] == pytest.approx(np.mean(list(summary["uar_by_corpus"].values())), abs=1e-4)


def test_train_holdout_says_how_a_keras_model_stopped(tiny_features):
    from ser.params import Settings

    features, params, manifest = tiny_features
    p = Settings.coerce(params)  # a learning rate of 0 (which params.yaml refuses) keeps validation loss flat
    keras = p.train.keras.model_copy(update={"optimizer": "sgd", "learning_rate": 0.0, "epochs": 5,
                                             "early_stopping_patience": 2})
    p = p.model_copy(update={"train": p.train.model_copy(update={"keras": keras})})
    spec = {"kind": "keras_mlp", "units": [8], "dropout": 0.0, "batchnorm": False}
    _, result, history = train_holdout("keras_mlp", spec, p, features, manifest)
    assert result["stopping"] == {"epochs_run": 3, "stop_reason": "early_stopping"} and len(history["loss"]) == 3
    _, result, _ = train_holdout("logistic", {"kind": "logistic", "C": 1.0}, params, features, manifest)
    assert result["stopping"] == {}
