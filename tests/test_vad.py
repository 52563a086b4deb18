"""The speech gate: silence, tones, noise and a 1-Hz file get "no speech detected", speech passes.

Real speech: the demo corpus (synthetic, what `make run` predicts on) and, where present, clips of
every real corpus. Prediction through the library (`predict_files`, segments) answers no emotion
for what the gate refuses, with status `no_speech`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser.audio import load_audio
from ser.vad import NoSpeech, SpeechGate, check_rate, detect_speech, require_speech

SR = 16000


def _t(seconds: float = 3.0) -> np.ndarray:
    return np.arange(int(seconds * SR)) / SR


NOT_SPEECH = {
    "digital silence": np.zeros(3 * SR),
    "dither at -80 dBFS": 1e-4 * np.random.default_rng(0).standard_normal(3 * SR),
    "220 Hz tone": 0.3 * np.sin(2 * np.pi * 220 * _t()),
    "1 kHz tone": 0.3 * np.sin(2 * np.pi * 1000 * _t()),
    "tone in faint noise": 0.3 * np.sin(2 * np.pi * 300 * _t()) + 0.01 * np.random.default_rng(2).standard_normal(3 * SR),
    "220 Hz square wave": 0.3 * np.sign(np.sin(2 * np.pi * 220 * _t())),
    "a chord": sum(a * np.sin(2 * np.pi * f * _t()) for a, f in ((0.2, 220), (0.2, 330), (0.1, 440))),
    "white noise": 0.1 * np.random.default_rng(3).standard_normal(3 * SR),
}
# Not guaranteed (README, reliability): pink/brown noise's level wanders enough to pass as voice at times.


@pytest.mark.parametrize("name", list(NOT_SPEECH))
def test_not_speech_is_refused(name):
    report = detect_speech(np.asarray(NOT_SPEECH[name], np.float32), SR)
    assert not report.speech and report.voiced_s < SpeechGate().min_voice_s, (name, report)
    with pytest.raises(NoSpeech, match="no speech detected"):
        require_speech(np.asarray(NOT_SPEECH[name], np.float32), SR)


def test_sample_rate_floor():
    check_rate(8000)
    with pytest.raises(NoSpeech, match="1 Hz is under the 8000 Hz floor"):
        check_rate(1)


@pytest.fixture(scope="module")
def demo_root(tiny_features) -> Path:
    return Path(tiny_features[1]["corpora"]["demo"]["root"])


def test_every_demo_clip_is_speech(demo_root):
    """The synthetic demo corpus is what `make run` and the demo predict on: all of it must pass the gate."""
    files = sorted(demo_root.rglob("*.wav"))
    assert len(files) >= 100
    reports = {f.name: detect_speech(load_audio(f, SR), SR) for f in files}
    refused = {k: r for k, r in reports.items() if not r.speech}
    assert not refused


@pytest.mark.shared
def test_real_speech_passes(shared_corpora):
    """Ten clips of each real corpus (the first in name order) are speech."""
    for corpus in ("ravdess", "tess", "emodb", "cremad", "savee", "casia", "esd"):
        files = sorted((shared_corpora / corpus).rglob("*.wav"))[:10]
        if not files:
            continue
        for f in files:
            report = detect_speech(load_audio(f, SR), SR)
            assert report.speech and report.voiced_s >= 0.3, (f, report)


def _write(path: Path, audio: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, np.asarray(audio, np.float32), sr, subtype="FLOAT")
    return path


def test_predict_files_gives_no_speech_rows(svc_model, demo_root, tmp_path):
    from ser.predict import predict_files

    artifact, _ = svc_model
    speech = next((demo_root / "spk01" / "happy").glob("*.wav"))
    one_hz = tmp_path / "one_hz.wav"
    sf.write(one_hz, np.linspace(-0.5, 0.5, 10), 1, subtype="PCM_16")
    files = [speech, _write(tmp_path / "silence.wav", NOT_SPEECH["digital silence"]),
             _write(tmp_path / "tone.wav", NOT_SPEECH["220 Hz tone"]),
             _write(tmp_path / "noise.wav", NOT_SPEECH["white noise"]), one_hz]
    df = predict_files(artifact, files, group_by="none")
    assert df["status"].tolist() == ["ok", "no_speech", "no_speech", "no_speech", "no_speech"]
    assert df.loc[0, "emotion"] is not None and df.loc[0, "error"] == ""
    assert df.loc[1:, "emotion"].isna().all() and df.loc[1:, "confidence"].isna().all()
    assert df.loc[1:, "error"].str.startswith("no speech detected").all()
    assert "1 Hz is under the 8000 Hz floor" in df.loc[4, "error"]


def test_segments_without_voice_get_no_emotion(svc_model, demo_root):
    from ser.predict import predict_segments

    artifact, _ = svc_model
    clip = load_audio(next((demo_root / "spk02" / "sad").glob("*.wav")), SR)
    audio = np.concatenate([np.zeros(2 * SR, np.float32), np.tile(clip, 2)[:2 * SR]]).astype(np.float32)
    df = predict_segments(artifact, audio, segment_s=1.0)
    assert df["status"].tolist()[:2] == ["no_speech", "no_speech"] and df["status"].tolist()[-1] == "ok"
    assert pd.isna(df.loc[0, "emotion"]) and df.loc[len(df) - 1, "emotion"] is not None
