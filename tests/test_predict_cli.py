"""`ser predict`: tables, --out files, error rows, --segment timelines and --plot figures, on demo audio."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ser import EMOTIONS
from ser.cli import app
from ser.speaker_norm import Standardizer
from ser.predict import (PROB_COLUMNS, model_proba, n_segments, normalise_window, predict_array, predict_segments,
                         raw_features, segment_bounds)

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())



@pytest.fixture(scope="module")
def corpus(tiny_features) -> Path:
    return Path(tiny_features[1]["corpora"]["demo"]["root"])


@pytest.fixture(scope="module")
def long_wav(corpus, tmp_path_factory) -> tuple[Path, int]:
    """Seven demo clips of one speaker back to back (one per emotion): a recording of several seconds."""
    clips = [sf.read(sorted((corpus / "spk01" / e).glob("*.wav"))[0], dtype="float32")[0] for e in EMOTIONS]
    audio = np.concatenate(clips)
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path, len(audio)


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_predict_folder_and_bad_file_gives_error_row(svc_model, corpus, tmp_path):
    _, model = svc_model
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF this is not audio")
    out = tmp_path / "p.json"
    result = invoke("predict", corpus / "spk01" / "angry", bad, "--model", model, "--out", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [Path(r["path"]).name for r in rows] == ["spk01_angry_01.wav", "spk01_angry_02.wav", "bad.wav"]
    good, broken = rows[:2], rows[2]
    for r in good:
        assert r["error"] == "" and r["emotion"] in EMOTIONS
        probs = [r[c] for c in PROB_COLUMNS]
        assert math.isclose(sum(probs), 1.0, abs_tol=1e-6)
        assert r["confidence"] == max(probs) and r["emotion"] == EMOTIONS[int(np.argmax(probs))]
    assert broken["error"].startswith(str(bad)) and "unreadable" in broken["error"]
    assert broken["emotion"] is None and all(broken[c] is None for c in PROB_COLUMNS)
    assert "error" in flat(result.output) and "1 of 3 file(s) could not be read" in flat(result.output)


def test_out_formats_hold_the_same_predictions(svc_model, corpus, tmp_path):
    _, model = svc_model
    files = sorted((corpus / "spk02").rglob("*.wav"))[:5]
    frames = {}
    for suffix in ("csv", "parquet", "json"):
        out = tmp_path / f"p.{suffix}"
        assert invoke("predict", *files, "--model", model, "--out", out).exit_code == 0
        frames[suffix] = {"csv": pd.read_csv, "parquet": pd.read_parquet,
                          "json": lambda p: pd.read_json(p, orient="records")}[suffix](out)
    for df in frames.values():
        assert list(df.columns) == ["path", "emotion", "confidence", *PROB_COLUMNS, "group", "normalised_by", "error"]
        assert len(df) == 5
        np.testing.assert_allclose(df[PROB_COLUMNS].to_numpy(float),
                                   frames["parquet"][PROB_COLUMNS].to_numpy(float), atol=1e-9)
        assert df["emotion"].tolist() == frames["parquet"]["emotion"].tolist()
    np.testing.assert_allclose(frames["csv"][PROB_COLUMNS].sum(axis=1), 1.0, atol=1e-9)


def test_bad_options_fail_cleanly(svc_model, corpus, tmp_path):
    _, model = svc_model
    wav = next((corpus / "spk01" / "sad").glob("*.wav"))
    r = invoke("predict", wav, "--model", model, "--out", tmp_path / "p.txt")
    assert r.exit_code == 1 and "--out must end in" in flat(r.output)
    r = invoke("predict", wav, "--model", model, "--hop", "1")
    assert r.exit_code == 1 and "--hop needs --segment" in flat(r.output)
    r = invoke("predict", wav, "--model", tmp_path / "nowhere")
    assert r.exit_code == 1 and "no model found at" in flat(r.output) and "run `make run` or pass --model" in flat(r.output)
    r = invoke("predict", wav, "--model", tmp_path)
    assert r.exit_code == 1 and "not a model artefact" in flat(r.output)
    r = invoke("predict", tmp_path, "--model", model)
    assert r.exit_code == 1 and "no audio files" in flat(r.output)


def test_segment_timeline_has_expected_windows(svc_model, long_wav, tmp_path):
    artifact, model = svc_model
    path, n = long_wav
    out, plot = tmp_path / "timeline.csv", tmp_path / "timeline.png"
    result = invoke("predict", path, "--model", model, "--segment", "1.0", "--hop", "0.5", "--out", out, "--plot", plot,
                    "--group-by", "none")
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    expected = 1 + math.ceil((n - 16000) / 8000)
    assert len(df) == expected == n_segments(n, 16000, 1.0, 0.5)
    assert df["segment"].tolist() == list(range(expected))
    np.testing.assert_allclose(df["end_s"] - df["start_s"], 1.0, atol=1e-9)
    assert df["start_s"].is_monotonic_increasing and df["start_s"].iloc[0] == 0
    assert df["end_s"].iloc[-1] == pytest.approx(n / 16000)  # the last window ends with the recording
    np.testing.assert_allclose(df[PROB_COLUMNS].sum(axis=1), 1.0, atol=1e-9)
    assert (df["error"].fillna("") == "").all()
    assert plot.read_bytes()[:8] == PNG and "timeline" in flat(result.output)
    # each row is exactly the model's answer for that slice, normalised on its own
    audio, _ = sf.read(path, dtype="float32")
    row = df.iloc[3]
    s, e = int(round(row.start_s * 16000)), int(round(row.end_s * 16000))
    np.testing.assert_allclose(row[PROB_COLUMNS].to_numpy(float),
                               predict_array(artifact, normalise_window(artifact, audio[s:e])), atol=1e-9)
    # by default the recording's windows are one group: standardised by their own statistics
    assert len(df) >= artifact.scaler.min_group_size
    grouped = tmp_path / "grouped.csv"
    assert invoke("predict", path, "--model", model, "--segment", "1.0", "--hop", "0.5", "--out", grouped).exit_code == 0
    g = pd.read_csv(grouped)
    raw = np.stack([raw_features(artifact, normalise_window(artifact, audio[int(round(a * 16000)):int(round(b * 16000))]))
                    for a, b in zip(g["start_s"], g["end_s"])])
    own = artifact.scaler.post.transform(Standardizer().fit(raw).transform(raw))
    np.testing.assert_allclose(g[PROB_COLUMNS].to_numpy(float), model_proba(artifact, own), atol=1e-9)


def test_segment_with_bad_file_and_default_hop(svc_model, long_wav, tmp_path):
    _, model = svc_model
    path, n = long_wav
    bad = tmp_path / "empty.wav"
    bad.write_bytes(b"")
    out = tmp_path / "t.parquet"
    assert invoke("predict", path, bad, "--model", model, "--segment", "2", "--out", out).exit_code == 0
    df = pd.read_parquet(out)
    good = df[df["path"] == str(path)]
    assert len(good) == 1 + math.ceil((n - 32000) / 32000)
    err = df[df["path"] == str(bad)]
    assert len(err) == 1 and "empty file" in err["error"].iloc[0] and pd.isna(err["emotion"].iloc[0])


def test_plot_draws_radars(svc_model, corpus, tmp_path):
    _, model = svc_model
    plot = tmp_path / "radar.png"
    r = invoke("predict", corpus / "spk03", "--model", model, "--plot", plot)  # 14 files: the first 12 drawn
    assert r.exit_code == 0, r.output
    from matplotlib.image import imread

    assert plot.read_bytes()[:8] == PNG
    height, width = imread(plot).shape[:2]
    assert width > height > 300  # a 4 x 3 grid
    r = invoke("predict", corpus / "spk03", "--model", model, "--plot", tmp_path / "radar.svg")
    assert r.exit_code == 1 and "--plot must end in .png" in flat(r.output)


def test_segment_bounds_cover_the_recording():
    assert segment_bounds(10, 1, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert segment_bounds(11, 1, 4, 3) == [(0, 4), (3, 7), (6, 10), (7, 11)]  # tail window ends at the end
    assert segment_bounds(3, 1, 4, 1) == [(0, 3)]                               # shorter than a window
    assert segment_bounds(0, 1, 4, 1) == []
    for n in range(1, 60):
        b = segment_bounds(n, 1, 7, 2)
        assert b[0][0] == 0 and b[-1][1] == n and len(b) == (1 if n <= 7 else 1 + math.ceil((n - 7) / 2))
        assert all(e - s == min(n, 7) for s, e in b)
    with pytest.raises(ValueError, match="positive"):
        segment_bounds(10, 1, 0, 1)
    with pytest.raises(ValueError, match="hop"):
        segment_bounds(10, 1, 2, -1)


def test_predict_segments_ungrouped_equals_single_calls(svc_model, long_wav):
    artifact, _ = svc_model
    audio, _ = sf.read(long_wav[0], dtype="float32")
    a = predict_segments(artifact, audio, 1.5, 0.7, group=False)
    for i in (0, len(a) - 1):
        s, e = int(round(a["start_s"][i] * 16000)), int(round(a["end_s"][i] * 16000))
        np.testing.assert_allclose(a.loc[i, PROB_COLUMNS].to_numpy(float),
                                   predict_array(artifact, normalise_window(artifact, audio[s:e])), atol=1e-9)


def test_predict_exits_1_when_every_file_failed_and_names_rows_by_file(svc_model, corpus, tmp_path):
    _, model = svc_model
    bad = [tmp_path / "a" / "take_01.wav", tmp_path / "b" / "take_01.wav"]
    for path in bad:
        path.parent.mkdir()
        path.write_bytes(b"RIFF this is not audio")
    result = invoke("predict", *bad, "--model", model)
    assert result.exit_code == 1
    assert "no file could be predicted (2 tried)" in flat(result.output)
    text = result.output
    assert "a/take_01.wav" in text and "b/take_01.wav" in text  # same name, told apart by their folders
    good = invoke("predict", corpus / "spk01" / "angry", bad[0], "--model", model)
    assert good.exit_code == 0 and "1 of 3 file(s) could not be read" in flat(good.output)
