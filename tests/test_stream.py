"""The streaming loop over a file source: window count, smoothing, real-time factor; mic errors are clear."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ser import EMOTIONS
from ser.cli import app
from ser.predict import normalise_window, predict_array
from ser.stream import (MicError, RingBuffer, StreamPredictor, file_source, input_devices, mic_source,
                        stream_settings)

SR = 16000


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())



@pytest.fixture(scope="module")
def svc(svc_model):
    return svc_model


@pytest.fixture(scope="module")
def recording(tiny_features, tmp_path_factory) -> tuple[Path, np.ndarray]:
    root = Path(tiny_features[1]["corpora"]["demo"]["root"])
    audio = np.concatenate([sf.read(p, dtype="float32")[0] for p in sorted((root / "spk02").rglob("*.wav"))[:6]])
    path = tmp_path_factory.mktemp("rec") / "rec.wav"
    sf.write(path, audio, SR, subtype="FLOAT")
    return path, audio


def test_ring_buffer_keeps_the_latest_samples():
    rng = np.random.default_rng(0)
    ring, everything = RingBuffer(50), np.zeros(0, np.float32)
    for size in rng.integers(0, 80, 40):
        block = rng.standard_normal(size).astype(np.float32)
        ring.write(block)
        everything = np.concatenate([everything, block])
        np.testing.assert_array_equal(ring.latest(), everything[-50:])
        np.testing.assert_array_equal(ring.latest(7), everything[-7:])


def test_file_stream_gives_one_prediction_per_window(svc, recording):
    artifact, _ = svc
    path, audio = recording
    sp = StreamPredictor(artifact, window_s=1.0, hop_s=0.25, smoothing=0.6)
    events = []
    stats = sp.run(file_source(path, block_s=0.05, sample_rate=SR), on_event=events.append)
    n = len(audio)
    assert len(events) == 1 + (n - SR) // 4000 == sp.expected_windows(n) == stats.windows
    assert [e.end_s for e in events] == pytest.approx([(SR + 4000 * i) / SR for i in range(len(events))])
    assert stats.audio_s == pytest.approx(n / SR)
    assert 0 < stats.rtf < 5 and math.isfinite(stats.rtf) and stats.compute_s > 0
    # each window is exactly the model's answer for that slice of the recording
    k = 5
    s = int(round(events[k].start_s * SR))
    np.testing.assert_allclose(events[k].proba, predict_array(artifact, normalise_window(artifact, audio[s:s + SR])),
                               atol=1e-6)
    # smoothing: a probability vector, bounded by what was seen, following the recurrence
    probas = np.array([e.proba for e in events])
    smoothed = np.array([e.smoothed for e in events])
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0, atol=1e-9)
    assert (smoothed >= probas.min(axis=0) - 1e-12).all() and (smoothed <= probas.max(axis=0) + 1e-12).all()
    np.testing.assert_allclose(smoothed[0], probas[0])
    np.testing.assert_allclose(smoothed[1:], 0.6 * smoothed[:-1] + 0.4 * probas[1:], atol=1e-12)
    assert np.abs(np.diff(smoothed, axis=0)).max() <= np.abs(np.diff(probas, axis=0)).max() + 1e-12
    assert all(e.emotion in EMOTIONS and e.smoothed_emotion in EMOTIONS for e in events)


def test_block_size_does_not_change_predictions(svc, recording):
    artifact, _ = svc
    _, audio = recording
    results = []
    for block in (160, 4001, 37_000):
        sp = StreamPredictor(artifact, window_s=0.8, hop_s=0.3, smoothing=0.0)
        sp.run(audio[i:i + block] for i in range(0, len(audio), block))
        results.append(np.array([e.proba for e in sp.events]))
    assert results[0].shape[0] == 1 + (len(audio) - 12800) // 4800
    np.testing.assert_allclose(results[0], results[1], atol=1e-12)
    np.testing.assert_allclose(results[0], results[2], atol=1e-12)


def _voiced(audio: np.ndarray, n: int) -> np.ndarray:
    """The first n samples of `audio` (on a 0.1 s grid) that the speech gate accepts."""
    from ser.vad import detect_speech

    for start in range(0, len(audio) - n, SR // 10):
        if detect_speech(audio[start:start + n], SR).speech:
            return audio[start:start + n].copy()
    raise AssertionError("no voiced stretch in the recording")


def test_short_stream_flushes_one_prediction_and_silence_is_skipped(svc, recording):
    artifact, _ = svc
    loud = _voiced(recording[1], 8000)
    sp = StreamPredictor(artifact, window_s=3.0, hop_s=1.0)
    stats = sp.run([loud])
    assert stats.windows == 1 and sp.events[0].end_s == 0.5 and sp.events[0].proba.sum() == pytest.approx(1)

    sp = StreamPredictor(artifact, window_s=0.5, hop_s=0.5, smoothing=0.5, silence_dbfs=-50)
    sp.run([loud, np.zeros(8000, np.float32), loud * 1e-4, loud])
    assert [e.silent for e in sp.events] == [False, True, True, False]
    assert [e.state for e in sp.events] == ["speech", "silent", "silent", "speech"]
    assert sp.events[1].emotion is None and np.array_equal(sp.events[1].smoothed, sp.events[0].smoothed)
    assert sp.stats.silent == 2 and sp.stats.no_speech == 0


def test_tones_and_noise_in_a_stream_are_no_speech(svc, recording):
    """A loud tone or noise is not silence, but no voice either: state no_speech, no emotion, history untouched."""
    artifact, _ = svc
    loud = _voiced(recording[1], SR)
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = (0.1 * np.random.default_rng(5).standard_normal(SR)).astype(np.float32)
    sp = StreamPredictor(artifact, window_s=1.0, hop_s=1.0, smoothing=0.5, silence_dbfs=-50)
    sp.run([loud, tone, noise, loud])
    assert [e.state for e in sp.events] == ["speech", "no_speech", "no_speech", "speech"]
    assert [e.emotion is None for e in sp.events] == [False, True, True, False]
    assert not sp.events[1].proba.any() and np.array_equal(sp.events[2].smoothed, sp.events[0].smoothed)
    assert sp.stats.no_speech == 2 and sp.events[1].as_row()["state"] == "no_speech"


def test_file_source_refuses_a_one_hertz_file(tmp_path):
    from ser.vad import NoSpeech

    path = tmp_path / "one_hz.wav"
    sf.write(path, np.linspace(-0.5, 0.5, 10), 1, subtype="PCM_16")
    with pytest.raises(NoSpeech, match="1 Hz is under the 8000 Hz floor"):
        list(file_source(path, sample_rate=SR))


def test_file_source_resamples_and_reports_bad_files(tmp_path):
    from ser.audio import AudioError

    t = np.arange(22050 * 2) / 22050
    path = tmp_path / "a.wav"
    sf.write(path, np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.3, 22050)  # stereo, 22.05 kHz
    blocks = list(file_source(path, block_s=0.1, sample_rate=SR))
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert abs(sum(len(b) for b in blocks) - 2 * SR) <= 2
    bad = tmp_path / "bad.wav"
    bad.write_text("text")
    with pytest.raises(AudioError, match="bad.wav"):
        next(file_source(bad))


def test_stream_settings_precedence():
    assert stream_settings(None) == {"window_s": 3.0, "hop_s": 1.0, "smoothing": 0.6}
    params = {"predict": {"window_s": 2.0, "smoothing": 0.3}}
    assert stream_settings(params, hop_s=0.5, smoothing=None) == {"window_s": 2.0, "hop_s": 0.5, "smoothing": 0.3}


class FakeSD:
    """Enough of sounddevice for mic_source: devices, a default, an InputStream that calls back."""

    class PortAudioError(Exception):
        pass

    def __init__(self, devices, rates=(16000,), blocks=3):
        self.devices, self.rates, self.blocks = devices, rates, blocks
        self.default = SimpleNamespace(device=[0, 1])

    def query_devices(self):
        return self.devices

    def InputStream(self, device, channels, samplerate, dtype, blocksize, callback):  # noqa: N802
        if samplerate not in self.rates:
            raise self.PortAudioError("Invalid sample rate")
        fake = self

        class Stream:
            def __enter__(self):
                for i in range(fake.blocks):
                    callback(np.full((blocksize, 1), 0.01 * (i + 1), np.float32), blocksize, None, None)
                return self

            def __exit__(self, *exc):
                return False

        return Stream()


def test_mic_source_with_a_fake_sound_card():
    mic = {"name": "USB mic", "max_input_channels": 1, "default_samplerate": 48000.0}
    speaker = {"name": "Speakers", "max_input_channels": 0, "default_samplerate": 48000.0}
    sd = FakeSD([mic, speaker])
    assert input_devices(sd) == [{"index": 0, "name": "USB mic", "channels": 1, "default_samplerate": 48000.0}]
    gen = mic_source("usb", SR, 0.1, sd=sd)
    first = next(gen)
    assert first.shape == (1600,) and first[0] == pytest.approx(0.01)
    gen.close()
    # a card that refuses 16 kHz is opened at its own rate and resampled
    gen = mic_source(0, SR, 0.1, sd=FakeSD([mic], rates=(48000,), blocks=4))
    total = sum(len(next(gen)) for _ in range(3))
    gen.close()
    assert 3 * 1600 - 600 <= total <= 3 * 1600  # the streaming resampler holds back a few hundred samples
    with pytest.raises(MicError, match="no audio input device"):
        next(mic_source(None, SR, sd=FakeSD([speaker])))
    with pytest.raises(MicError, match="no input device matches 'webcam'"):
        next(mic_source("webcam", SR, sd=sd))


def test_listen_cli_on_a_file_and_without_a_microphone(svc, recording, tmp_path, monkeypatch):
    _, model = svc
    path, audio = recording
    runner = CliRunner()
    out = tmp_path / "live.csv"
    r = runner.invoke(app, ["listen", "--file", str(path), "--model", str(model), "--window", "1", "--hop", "0.5",
                            "--out", str(out), "--params", str(tmp_path / "absent.yaml")])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert len(df) == 1 + (len(audio) - SR) // 8000
    assert "real-time factor" in flat(r.output)
    np.testing.assert_allclose(df[[f"smooth_{e}" for e in EMOTIONS]].sum(axis=1), 1.0, atol=1e-9)

    import ser.stream

    monkeypatch.setattr(ser.stream, "import_sounddevice", lambda: FakeSD([]))
    r = runner.invoke(app, ["listen", "--model", str(model)])
    assert r.exit_code == 1 and "no audio input device found" in flat(r.output)

    def missing():
        raise MicError("PortAudio is not installed (PortAudio library not found)")

    monkeypatch.setattr(ser.stream, "import_sounddevice", missing)
    r = runner.invoke(app, ["listen", "--model", str(model)])
    assert r.exit_code == 1 and "PortAudio is not installed" in flat(r.output)


def test_import_sounddevice_fails_with_a_clear_message_or_works():
    from ser.stream import import_sounddevice

    try:
        sd = import_sounddevice()
    except MicError as err:  # sounddevice or the PortAudio library missing (as on CI)
        assert "sounddevice" in str(err) or "PortAudio" in str(err)
    else:
        assert hasattr(sd, "InputStream")


def test_listen_cli_from_a_fake_microphone(svc, tmp_path, monkeypatch):
    import ser.stream

    _, model = svc
    mic = {"name": "Fake mic", "max_input_channels": 2, "default_samplerate": 16000.0}
    monkeypatch.setattr(ser.stream, "import_sounddevice", lambda: FakeSD([mic], blocks=30))
    out = tmp_path / "mic.json"
    r = CliRunner().invoke(app, ["listen", "--model", str(model), "--device", "fake", "--window", "1", "--hop", "0.5",
                                 "--seconds", "2", "--silence-db", "-999", "--out", str(out),
                                 "--params", str(tmp_path / "none.yaml")])
    assert r.exit_code == 0, r.output
    rows = pd.read_json(out)
    assert len(rows) == 3 and rows["end_s"].tolist() == [1.0, 1.5, 2.0]  # stops after --seconds of audio
    r = CliRunner().invoke(app, ["listen", "--model", str(model), "--device", "7", "--params", str(tmp_path / "n.yaml")])
    assert r.exit_code == 1 and "no input device matches 7" in flat(r.output)


def test_listen_cli_says_no_speech_for_a_tone(svc, tmp_path):
    _, model = svc
    path = tmp_path / "tone.wav"
    t = np.arange(3 * SR) / SR
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), SR)
    out = tmp_path / "tone.csv"
    r = CliRunner().invoke(app, ["listen", "--file", str(path), "--model", str(model), "--window", "1", "--hop", "1",
                                 "--out", str(out), "--params", str(tmp_path / "absent.yaml")])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert df["state"].tolist() == ["no_speech"] * 3 and df["emotion"].isna().all()
    assert "3 without speech" in flat(r.output)
