"""The page of `ser serve`: /page/analyze's answers (same checks as /predict), then the page in a real browser."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from ser import EMOTIONS
from ser.predict import n_segments
from ser.serve import Limits, create_app

LIMITS = Limits(max_upload_bytes=2_000_000, max_duration_s=30.0, max_files=4, max_batch_bytes=4_000_000)


@pytest.fixture(scope="module")
def model_dir(svc_model) -> Path:
    return svc_model[1]


@pytest.fixture(scope="module")
def client(model_dir):
    with TestClient(create_app(model_dir, LIMITS), raise_server_exceptions=False) as c:
        yield c


def post(client, data: bytes, name: str = "clip.wav", group: str | None = None, ctype: str = "audio/wav"):
    return client.post("/page/analyze", files={"file": (name, data, ctype)}, data={"group": group} if group else {})


def test_analyze_matches_predict_and_draws(client, clips):
    data = clips[0].read_bytes()
    page = post(client, data, clips[0].name)
    assert page.status_code == 200, page.text
    body = page.json()
    api = client.post("/predict", files={"file": (clips[0].name, data, "audio/wav")}).json()
    assert body["prediction"] == api
    duration = sf.info(clips[0]).duration
    assert body["waveform"]["duration_s"] == pytest.approx(duration, abs=1e-4)
    assert len(body["waveform"]["min"]) == len(body["waveform"]["max"]) == 800
    assert body["waveform"]["peak"] == pytest.approx(float(np.abs(sf.read(clips[0])[0]).max()), abs=1e-3)
    assert body["spectrogram"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert duration < 3.0 and body["timeline"] is None


@pytest.mark.parametrize("fmt,subtype,ctype", [("FLAC", "PCM_16", "audio/flac"), ("OGG", "VORBIS", "audio/ogg")])
def test_flac_and_ogg(client, clips, fmt, subtype, ctype):
    audio, sr = sf.read(clips[1], dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype=subtype)
    body = post(client, buf.getvalue(), f"clip.{fmt.lower()}", ctype=ctype).json()
    assert body["prediction"]["filename"] == f"clip.{fmt.lower()}"
    assert body["waveform"]["duration_s"] == pytest.approx(len(audio) / sr, abs=0.01)
    assert sum(body["prediction"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


def test_long_clip_gets_the_timeline(client, long_clip):
    body = post(client, long_clip.read_bytes(), long_clip.name).json()
    n = len(sf.read(long_clip)[0])
    timeline = body["timeline"]
    assert timeline["window_s"] == 3.0 and timeline["hop_s"] == 1.0
    assert len(timeline["segments"]) == n_segments(n, 16000, 3.0, 1.0) > 1
    assert timeline["segments"][-1]["end_s"] == pytest.approx(n / 16000, abs=1e-4)
    for seg in timeline["segments"]:
        assert list(seg["probabilities"]) == list(EMOTIONS)
        assert sum(seg["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


def test_group_normalisation_kicks_in_at_min_group_size(client, clips, model_dir):
    import json

    norm = json.loads((model_dir / "artifact.json").read_text())["normalize"]
    assert norm["mode"] == "speaker"
    need = norm["min_group_size"]
    answers = [post(client, clips[i % len(clips)].read_bytes(), group="page-test-voice").json() for i in range(need)]
    assert [a["normalisation"]["group_clips"] for a in answers] == list(range(1, need + 1))
    assert [a["normalisation"]["by_group"] for a in answers] == [False] * (need - 1) + [True]
    assert answers[-1]["prediction"]["normalised_by"] == "group"
    assert post(client, clips[0].read_bytes()).json()["normalisation"]["group_clips"] is None


@pytest.mark.parametrize("data,name,status,words", [
    (b"these are my notes, not audio", "notes.wav", 415, "not WAV, FLAC or OGG"),
    (b"", "empty.wav", 422, "empty file"),
    (b"RIFF\x10\x00\x00\x00WAVEfmt garbage", "broken.wav", 422, "corrupt"),
])
def test_bad_files_are_readable_errors(client, data, name, status, words):
    r = post(client, data, name)
    assert r.status_code == status and words in r.json()["detail"]
    assert "Traceback" not in r.text


def test_limits_are_the_apis(client):
    big = io.BytesIO()
    sf.write(big, np.zeros(16000 * 31, dtype=np.float32), 16000, format="WAV", subtype="PCM_16")
    r = post(client, big.getvalue(), "long.wav")
    assert r.status_code == 413 and "over the limit of 30 s" in r.json()["detail"]
    assert client.post("/page/analyze", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    r = client.post("/page/analyze", files={"other": ("a.wav", b"x", "audio/wav")})
    assert r.status_code == 422 and "choose one audio file" in r.json()["detail"]


def test_page_and_static_files_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>ser: try the speech emotion model</title>" in page.text
    import re

    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(r.startswith(("/", "data:", "#")) for r in refs), refs
    for ref in (r for r in refs if r.startswith("/static/")):
        assert client.get(ref).status_code == 200
    js = client.get("/static/app.js").text
    assert "http://" not in js and "https://" not in js


def test_report_route(tmp_path, monkeypatch, model_dir):
    monkeypatch.chdir(tmp_path)  # a folder with no reports/index.html
    with TestClient(create_app(model_dir, LIMITS)) as c:
        missing = c.get("/report")
    assert missing.status_code == 404 and "<code>ser report</code>" in missing.text
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "index.html").write_text("<!doctype html><title>run report</title>")
    with TestClient(create_app(model_dir, LIMITS)) as c:
        r = c.get("/report")
    assert r.status_code == 200 and "<title>run report</title>" in r.text


def test_a_window_without_an_emotion_is_blank_not_an_error():
    from ser.predict import PROB_COLUMNS
    from ser.web import segment

    scored = {"start_s": 0.0, "end_s": 3.0, "emotion": "sad", "confidence": 0.6,
              **{c: (0.6 if c == "prob_sad" else 0.4 / 6) for c in PROB_COLUMNS}}
    silent = {"start_s": 1.0, "end_s": 4.0, "emotion": None, "confidence": None, **dict.fromkeys(PROB_COLUMNS)}
    assert segment(scored, PROB_COLUMNS)["probabilities"]["sad"] == 0.6
    assert segment(silent, PROB_COLUMNS) == {"start_s": 1.0, "end_s": 4.0, "emotion": None, "confidence": None,
                                             "probabilities": None}
