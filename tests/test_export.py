"""Exporting a Keras artefact to SavedModel and TFLite matches the Keras model; sklearn is refused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ser.cli import app
from ser.export import ExportError, export_artifact, folded_scaler, parity_inputs, reference_proba

runner = CliRunner()


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())



@pytest.fixture(scope="module")
def keras_dir(tiny_features, plain_params, tmp_path_factory) -> Path:
    import copy

    from ser.train import train_holdout

    p = copy.deepcopy(plain_params)
    p["train"]["keras"]["epochs"] = 2
    artifact, _, _ = train_holdout("keras_mlp", {"kind": "keras_mlp", "units": [32]}, p, tiny_features[0], tiny_features[2])
    return artifact.save(tmp_path_factory.mktemp("export") / "keras_mlp")


@pytest.fixture(scope="module")
def artifact(keras_dir):
    from ser.artifact import load_artifact

    return load_artifact(keras_dir)


def test_folded_scaler_equals_the_artefact_scaler(artifact):
    x = parity_inputs(artifact, 5)
    mean, std = folded_scaler(artifact)
    np.testing.assert_allclose((x - mean) / std, artifact.scaler.transform(x), atol=1e-4)


@pytest.mark.parametrize("fmt", ["tflite", "savedmodel"])
def test_export_matches_keras(keras_dir, artifact, tmp_path, fmt):
    out = tmp_path / ("model.tflite" if fmt == "tflite" else "saved")
    result = export_artifact(keras_dir, out, fmt, artifact=artifact)
    assert result.ok and result.max_abs_diff < 1e-4 and result.n_inputs == 8
    meta = json.loads((out.with_name("model.tflite.json") if fmt == "tflite" else out / "ser_export.json").read_text())
    assert meta["scaler_included"] and meta["input_shape"] == [len(artifact.scaler.fallback.mean)]
    assert meta["feature_hash"] == artifact.features.config_hash() and meta["labels"][0] == "angry"
    # the tiny features carry the Whisper encoder (params.yaml turns it on): the file is the head only, and says so
    from ser.features import pooled_feature_names

    assert artifact.features.encoder is not None and meta["head_only"] is True
    assert "CTranslate2" in meta["input_note"] and "fused feature vector" in meta["input_note"]
    assert result.note == meta["input_note"]
    assert meta["input_columns"] == pooled_feature_names(artifact.features)
    assert len(meta["input_columns"]) == meta["input_shape"][0] and meta["input_columns"][-1].startswith("enc_std_")
    first_enc = next(i for i, c in enumerate(meta["input_columns"]) if c.startswith("enc_"))
    assert not [c for c in meta["input_columns"][first_enc:] if not c.startswith("enc_")]  # encoder columns last
    assert meta["encoder"]["name"] == artifact.features.encoder.name
    assert meta["encoder"]["pad_s"] == artifact.features.encoder.pad_s
    assert meta["encoder"]["signature"] == artifact.features.encoder.signature()
    # independently of the parity check inside: real-clip features through the exported model
    rng = np.random.default_rng(5)
    audio = [(rng.standard_normal(16000) * 0.2).astype(np.float32) for _ in range(3)]
    from ser.predict import raw_features

    x = np.stack([raw_features(artifact, a) for a in audio]).astype(np.float32)
    if fmt == "tflite":
        from ser.export import _tflite_run

        got = _tflite_run(out.read_bytes(), x)
        assert out.stat().st_size == result.size_bytes
    else:
        from ser.export import _savedmodel_run

        got = _savedmodel_run(out, x)
    np.testing.assert_allclose(got, reference_proba(artifact, x), atol=1e-4)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_failed_parity_writes_nothing(keras_dir, artifact, tmp_path):
    out = tmp_path / "m.tflite"
    with pytest.raises(ExportError, match="parity check failed"):
        export_artifact(keras_dir, out, "tflite", tolerance=-1.0, artifact=artifact)
    assert list(tmp_path.iterdir()) == []


def test_cli_export_and_sklearn_refused(keras_dir, svc_model, tmp_path):
    out = tmp_path / "m.tflite"
    r = runner.invoke(app, ["export", "--format", "tflite", "--model", str(keras_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "max |exported - keras|" in flat(r.output) and out.is_file()
    assert "head only" in flat(r.output) and "m.tflite.json" in flat(r.output)
    r = runner.invoke(app, ["export", "--format", "onnx", "--model", str(keras_dir), "--out", str(out)])
    assert r.exit_code == 1 and "--format must be one of savedmodel, tflite" in flat(r.output)

    svc_dir = svc_model[1]
    r = runner.invoke(app, ["export", "--format", "savedmodel", "--model", str(svc_dir), "--out", str(tmp_path / "s")])
    assert r.exit_code == 1 and "only Keras models can be exported" in flat(r.output) and "sklearn" in flat(r.output)
    assert not (tmp_path / "s").exists()


def test_fast_keras_path_matches_predict_proba(artifact):
    from ser.predict import model_proba

    x = artifact.scaler.transform(parity_inputs(artifact, 6, seed=2))
    np.testing.assert_allclose(model_proba(artifact, x), artifact.model.predict_proba(x), atol=1e-6)
