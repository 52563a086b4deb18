"""The model artefact round-trips, and refuses altered files and mismatched feature params."""
import dataclasses

import numpy as np
import pytest

from ser.artifact import ArtifactError, load_artifact, read_meta
from ser.feature_table import FeatureSettings
from ser.predict import predict_files
from ser.train import holdout, load_table, train_holdout


@pytest.fixture(scope="module")
def saved(tiny_features, tmp_path_factory):
    features, params, manifest = tiny_features
    artifact, _, _ = train_holdout("svc", {"kind": "svc", "C": 10.0}, params, features, manifest)
    folder = artifact.save(tmp_path_factory.mktemp("art") / "svc")
    return artifact, folder, features, params, manifest


def test_round_trip_gives_identical_predictions(saved):
    artifact, folder, features, params, manifest = saved
    settings = FeatureSettings.from_params(params)
    loaded = load_artifact(folder, expected_features=settings.features)
    _, _, test = holdout(load_table(features, "pooled", settings.features, manifest))
    x = artifact.scaler.transform(test.x)
    np.testing.assert_allclose(loaded.model.predict_proba(loaded.scaler.transform(test.x)),
                               artifact.model.predict_proba(x), atol=1e-7)
    meta = read_meta(folder)
    assert meta["labels"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert meta["feature_hash"] == settings.features.config_hash()
    assert "Model card: svc" in (folder / "card.md").read_text()


def test_mismatched_feature_params_are_refused(saved):
    _, folder, _, params, _ = saved
    other = dataclasses.replace(FeatureSettings.from_params(params).features, n_mfcc=13)
    with pytest.raises(ArtifactError, match=r"other feature params.*n_mfcc.*\(20, 13\)"):
        load_artifact(folder, expected_features=other)


def test_altered_file_is_refused(saved, tmp_path):
    import shutil

    _, folder, _, _, _ = saved
    copy = tmp_path / "svc"
    shutil.copytree(folder, copy)
    with (copy / "scaler.npz").open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(ArtifactError, match="scaler.npz does not match its recorded hash"):
        load_artifact(copy)
    (copy / "artifact.json").unlink()
    with pytest.raises(ArtifactError, match="not a model artefact"):
        load_artifact(copy)


def test_predict_files_reports_bad_files_in_rows(saved, tiny_features, tmp_path):
    _, folder, _, params, _ = saved
    root = params["corpora"]["demo"]["root"]
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    df = predict_files(load_artifact(folder), [f"{root}/spk01/angry", bad])
    assert len(df) == 3 and df["error"].iloc[-1].startswith(str(bad))
    good = df[df["error"] == ""]
    assert np.allclose(good[[c for c in df.columns if c.startswith("prob_")]].sum(axis=1), 1.0)
    assert set(good["emotion"]) <= {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
