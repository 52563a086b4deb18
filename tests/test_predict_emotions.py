"""Restricting predictions to a set of emotions (`--emotions`, `predict.emotions`, the API's `emotions` field):
the other probabilities are 0, the rest renormalised, all seven columns kept; unknown names are refused.

The model is tiny_features' SVC, whose features include the Whisper encoder (params.yaml turns it on), so these
are also the end-to-end checks of `ser predict`, `ser listen --file` and the API with an encoder model."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from ser import EMOTIONS
from ser.cli import app
from ser.params import PredictParams, parse_emotions
from ser.predict import PROB_COLUMNS, predict_files
from ser.predictor import mask_proba

runner = CliRunner()
FOUR = ("angry", "happy", "neutral", "sad")
OUT = [f"prob_{e}" for e in EMOTIONS if e not in FOUR]
IN = [f"prob_{e}" for e in FOUR]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def corpus(tiny_features) -> Path:
    return Path(tiny_features[1]["corpora"]["demo"]["root"])


@pytest.fixture(scope="module")
def files(corpus) -> list[Path]:
    return [sorted((corpus / "spk01" / e).glob("*.wav"))[0] for e in EMOTIONS]


def check_masked(df: pd.DataFrame, allowed=FOUR) -> None:
    """Every row: the excluded emotions 0, the rest summing to 1, the emotion and confidence from the set."""
    probs = df[PROB_COLUMNS].to_numpy(float)
    out = [i for i, e in enumerate(EMOTIONS) if e not in allowed]
    assert (probs[:, out] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert set(df["emotion"]) <= set(allowed)
    np.testing.assert_allclose(df["confidence"], probs.max(axis=1))


def test_parse_emotions_orders_and_refuses_bad_names():
    assert parse_emotions(" sad,Angry ,happy") == ("angry", "happy", "sad")
    assert parse_emotions(None) is None and parse_emotions("") is None and parse_emotions([]) is None
    with pytest.raises(ValueError, match="unknown emotion.*'hapy'"):
        parse_emotions("angry,hapy")
    with pytest.raises(ValueError, match="listed twice: sad"):
        parse_emotions("sad,angry,sad")
    with pytest.raises(ValueError, match="at least two"):
        parse_emotions("sad")
    assert PredictParams(emotions=["sad", "angry"]).emotions == ["angry", "sad"]
    assert PredictParams().emotions is None
    with pytest.raises(ValueError, match="'calm'"):
        PredictParams(emotions=["calm", "sad"])


def test_mask_proba_renormalises_over_the_set():
    p = np.array([[0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1],   # fear most probable overall, angry/happy/neutral tie
                  [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5]])  # no mass on the set: equal shares of it
    got = mask_proba(p, ("angry", "happy", "neutral"))
    np.testing.assert_allclose(got[0], [1 / 3, 0, 0, 1 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(got[1], [1 / 3, 0, 0, 1 / 3, 1 / 3, 0, 0])
    got = mask_proba(p, ("fear", "sad"))
    np.testing.assert_allclose(got, [[0, 0, 0.75, 0, 0, 0.25, 0], [0, 0, 0, 0, 0, 1, 0]])
    assert np.array_equal(mask_proba(p, None), p)


def test_predict_files_masked_equals_the_full_prediction_renormalised(svc_model, files):
    artifact, _ = svc_model
    from ser.features import pooled_feature_names

    assert any(c.startswith("enc_") for c in pooled_feature_names(artifact.features))  # an encoder model
    full = predict_files(artifact, files, group_by="none")
    masked = predict_files(artifact, files, group_by="none", emotions="angry,happy,neutral,sad")
    assert list(masked.columns) == list(full.columns) and (masked["status"] == "ok").all()
    check_masked(masked)
    kept = full[IN].to_numpy(float)
    np.testing.assert_allclose(masked[IN].to_numpy(float), kept / kept.sum(axis=1, keepdims=True), atol=1e-9)
    with pytest.raises(ValueError, match="'joy'"):
        predict_files(artifact, files, emotions=["joy", "sad"])


def test_cli_predict_with_emotions_option_and_params_default(svc_model, files, tmp_path):
    model = svc_model[1]
    out = tmp_path / "p.csv"
    r = runner.invoke(app, ["predict", *map(str, files), "--model", str(model), "--out", str(out),
                            "--emotions", "angry,happy,neutral,sad", "--params", str(tmp_path / "absent.yaml")])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert len(df) == 7 and list(df.columns[1:10]) == ["emotion", "confidence", *PROB_COLUMNS]
    check_masked(df)
    assert "predicting only angry, happy, neutral, sad" in flat(r.output)

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"predict": {"emotions": ["sad", "neutral"]}}))
    out2 = tmp_path / "p2.csv"
    r = runner.invoke(app, ["predict", *map(str, files), "--model", str(model), "--out", str(out2),
                            "--params", str(params)])
    assert r.exit_code == 0, r.output
    check_masked(pd.read_csv(out2), ("neutral", "sad"))
    out3 = tmp_path / "p3.csv"  # the option wins over params.yaml
    r = runner.invoke(app, ["predict", str(files[0]), "--model", str(model), "--out", str(out3),
                            "--params", str(params), "--emotions", "angry,fear"])
    assert r.exit_code == 0, r.output
    check_masked(pd.read_csv(out3), ("angry", "fear"))

    r = runner.invoke(app, ["predict", str(files[0]), "--model", str(model), "--emotions", "angry,hapy"])
    assert r.exit_code == 2 and "'hapy'" in flat(r.output) and "--emotions" in flat(r.output)
    params.write_text(yaml.safe_dump({"predict": {"emotions": ["sad", "bored"]}}))
    r = runner.invoke(app, ["predict", str(files[0]), "--model", str(model), "--params", str(params)])
    assert r.exit_code == 2 and "predict.emotions" in flat(r.output) and "'bored'" in flat(r.output)


def test_cli_predict_segments_with_emotions(svc_model, files, tmp_path):
    out = tmp_path / "t.csv"
    r = runner.invoke(app, ["predict", str(files[0]), "--model", str(svc_model[1]), "--segment", "0.5",
                            "--emotions", "angry,happy,neutral,sad", "--out", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    check_masked(df[df["status"] == "ok"])


def test_listen_file_with_emotions(svc_model, files, tmp_path):
    import soundfile as sf

    audio = np.concatenate([sf.read(f, dtype="float32")[0] for f in files])
    rec = tmp_path / "rec.wav"
    sf.write(rec, audio, 16000, subtype="FLOAT")
    out = tmp_path / "live.csv"
    r = runner.invoke(app, ["listen", "--file", str(rec), "--model", str(svc_model[1]), "--window", "1", "--hop", "1",
                            "--out", str(out), "--emotions", "angry,happy,neutral,sad",
                            "--params", str(tmp_path / "absent.yaml")])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    speech = df[df["state"] == "speech"]
    assert len(df) == len(audio) // 16000 and len(speech) > 0
    check_masked(speech)
    smooth = speech[[f"smooth_{e}" for e in EMOTIONS]].to_numpy(float)
    assert (smooth[:, [EMOTIONS.index(c[5:]) for c in OUT]] == 0).all()
    np.testing.assert_allclose(smooth.sum(axis=1), 1.0, atol=1e-9)
    assert set(speech["smoothed_emotion"]) <= set(FOUR)
    r = runner.invoke(app, ["listen", "--file", str(rec), "--model", str(svc_model[1]), "--emotions", "angry,calm"])
    assert r.exit_code == 2 and "'calm'" in flat(r.output)


def test_api_emotions_field(svc_model, files):
    from ser.serve import create_app

    with TestClient(create_app(svc_model[1]), raise_server_exceptions=False) as client:
        clip = files[3].read_bytes()
        full = client.post("/predict", files={"file": ("happy.wav", clip, "audio/wav")}).json()
        r = client.post("/predict", files={"file": ("happy.wav", clip, "audio/wav")},
                        data={"emotions": "angry,happy,neutral,sad"})
        assert r.status_code == 200, r.text
        body = r.json()
        probs = body["probabilities"]
        assert list(probs) == list(EMOTIONS) and all(probs[e] == 0 for e in EMOTIONS if e not in FOUR)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9) and body["emotion"] in FOUR
        kept = sum(full["probabilities"][e] for e in FOUR)
        assert probs["sad"] == pytest.approx(full["probabilities"]["sad"] / kept, abs=1e-9)

        r = client.post("/predict/batch", files=[("files", (f.name, f.read_bytes(), "audio/wav")) for f in files[:3]],
                        data={"emotions": "fear,sad"})
        assert r.status_code == 200 and r.json()["ok"] == 3
        for item in r.json()["results"]:
            p = item["result"]["probabilities"]
            assert sum(p.values()) == pytest.approx(1.0, abs=1e-9) and item["result"]["emotion"] in ("fear", "sad")
            assert p["fear"] + p["sad"] == pytest.approx(1.0, abs=1e-9)

        for path, fields in (("/predict", {"file": ("a.wav", clip, "audio/wav")}),
                             ("/predict/batch", {"files": ("a.wav", clip, "audio/wav")})):
            r = client.post(path, files=fields, data={"emotions": "angry,grumpy"})
            assert r.status_code == 422 and "grumpy" in r.json()["detail"] and "emotions" in r.json()["detail"]
        spec = client.get("/openapi.json").json()
        body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert "emotions" in body["properties"] and body["required"] == ["file"]
