"""Switching corpora: features of a corpus no longer configured stay on disk but never reach training or
validation (the demo-then-real leak: 88 speakers trained and scored where the manifest had 76)."""
from __future__ import annotations

import copy

import pandas as pd
import pytest

from ser.demo import write_demo_corpus
from ser.feature_table import FeatureSettings, manifest_features, plan_chunks, read_features, run_chunk
from ser.features import pooled_feature_names
from ser.ingest import ingest_corpus
from ser.split import build_manifest
from ser.train import load_table, train_holdout
from ser.validate import validate_features


@pytest.fixture(scope="module")
def demo_then_real(tmp_path_factory, plain_params):
    """One features folder that holds a 'demo' corpus from an earlier run and the 'real' corpus now
    configured; the manifest (the `manifest` stage's output) holds 'real' only."""
    base = tmp_path_factory.mktemp("switch")
    params = copy.deepcopy(plain_params)
    params["augment"]["copies"] = 1
    settings = FeatureSettings.from_params(params)
    manifests = {}
    for name, seed in (("demo", 3), ("real", 11)):
        root = base / name
        write_demo_corpus(root, speakers=8, utterances_per_emotion=1, seed=seed)
        manifest, _ = build_manifest([ingest_corpus(root, "folder", params["labels"]["folder"], name=name).manifest],
                                     protocol="speaker", ratios={"train": 0.5, "val": 0.25, "test": 0.25}, seed=1)
        for chunk in plan_chunks(manifest, settings, 100):
            run_chunk(chunk, manifest, {name: root}, settings, base / "features")
        manifests[name] = manifest
    params["corpora"] = {"real": {"format": "folder", "root": str(base / "real")}}
    return base / "features", params, manifests["real"], manifests["demo"]


def test_both_corpora_are_on_disk(demo_then_real):
    features, _, real, demo = demo_then_real
    on_disk = read_features(features / "pooled", columns=["utt_id", "corpus"])
    assert set(on_disk["corpus"]) == {"demo", "real"}


def test_training_table_holds_exactly_the_manifest(demo_then_real):
    features, params, real, demo = demo_then_real
    table = load_table(features, "pooled", FeatureSettings.from_params(params).features, real)
    originals = table.meta[~table.meta["augmented"]]
    assert sorted(originals["utt_id"]) == sorted(real["utt_id"])
    assert set(table.meta["speaker"]) == set(real["speaker"])
    assert not set(table.meta["speaker"]) & set(demo["speaker"])
    # every augmented copy comes from a training utterance of the manifest
    copies = table.meta[table.meta["augmented"]]
    assert set(copies["source"]) == set(real.loc[real["split"] == "train", "utt_id"])


def test_scores_name_no_demo_corpus(demo_then_real):
    features, params, real, demo = demo_then_real
    _, result, _ = train_holdout("logistic", {"kind": "logistic", "C": 1.0}, params, features, real)
    test = result["scores"]["test"]
    assert test["n"] == (real["split"] == "test").sum()
    assert set(test["by_corpus"]) == {"real"}
    assert "demo" not in str(result["data"])
    assert result["data"]["test"]["speakers"] == real.loc[real["split"] == "test", "speaker"].nunique()


def test_manifest_is_the_truth_for_labels_and_splits(demo_then_real):
    features, _, real, _ = demo_then_real
    moved = real.copy()
    speaker = moved.loc[moved["split"] == "val", "speaker"].iloc[0]
    moved.loc[moved["speaker"] == speaker, "split"] = "test"
    df = manifest_features(features / "pooled", moved, columns=["utt_id", "source", "speaker", "split", "augmented"])
    assert set(df.loc[df["speaker"] == speaker, "split"]) == {"test"}


def test_validation_fails_on_rows_outside_the_manifest(demo_then_real):
    features, params, real, _ = demo_then_real
    names = pooled_feature_names(FeatureSettings.from_params(params).features)
    cfg = {"require_all_classes": False}
    everything = read_features(features / "pooled")
    report = validate_features(everything, names, cfg, manifest_ids=real["utt_id"])
    assert not report.success
    [leak] = [r for r in report.results if not r.success and "utterance of the manifest" in r.check]
    assert leak.unexpected_count == len(everything) - len(everything[everything["corpus"] == "real"])
    assert {row["corpus"] for row in leak.rows} == {"demo"}
    configured = read_features(features / "pooled", corpora=sorted(set(real["corpus"])))
    assert validate_features(configured, names, cfg, manifest_ids=real["utt_id"]).success
    assert set(configured["corpus"]) == {"real"}
    assert isinstance(configured, pd.DataFrame)
