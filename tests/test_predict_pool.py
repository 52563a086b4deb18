"""`ser predict FOLDER`'s fast path: features in a process pool, the encoder batched per chunk, rows streamed
to --out, running counts, and no TensorFlow for a scikit-learn model. Real demo clips throughout."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ser import encoder
from ser.cli import app
from ser.encoder import EncoderConfig
from ser.predict import (FILE_COLUMNS, PROB_COLUMNS, Tally, collect_rows, exit_code, failed_files, iter_file_rows,
                         no_speech_files, predict_files, write_table)
from ser.predict_pool import featurise_chunk, worker_featuriser
from ser.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tiny_features, tmp_path_factory) -> Path:
    """Two demo speakers' clips (14 each, by emotion folder: one group per speaker), plus a tone (no speech)
    and an unreadable file in a third folder."""
    root = Path(tiny_features[1]["corpora"]["demo"]["root"])
    base = tmp_path_factory.mktemp("pool") / "batch"
    for spk in ("spk01", "spk02"):
        shutil.copytree(root / spk, base / spk)
    odd = base / "zz_odd"
    odd.mkdir()
    t = np.arange(32000) / 16000
    sf.write(odd / "tone_440.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    (odd / "broken.wav").write_bytes(b"RIFF this is not audio")
    return base


def frames_equal(a: pd.DataFrame, b: pd.DataFrame, atol: float = 1e-9) -> None:
    assert list(a.columns) == list(b.columns) == FILE_COLUMNS
    for col in ("path", "emotion", "group", "normalised_by", "status", "error"):
        assert a[col].fillna("").astype(str).tolist() == b[col].fillna("").astype(str).tolist(), col
    np.testing.assert_allclose(a[["confidence", *PROB_COLUMNS]].to_numpy(float),
                               b[["confidence", *PROB_COLUMNS]].to_numpy(float), atol=atol)


def test_two_workers_give_the_rows_of_one(svc_model, folder):
    artifact, _ = svc_model
    one = predict_files(artifact, [folder], workers=1)
    two = pd.DataFrame(list(iter_file_rows(artifact, [folder], workers=2, chunk_size=5)), columns=FILE_COLUMNS)
    frames_equal(one, two, atol=1e-6)
    assert len(one) == 30
    assert [Path(p).name for p in one["path"].tail(2)] == ["broken.wav", "tone_440.wav"]
    assert one["status"].tolist() == ["ok"] * 28 + ["error", "no_speech"]
    assert "unreadable" in one["error"].iloc[28] and one["error"].iloc[29].startswith("no speech detected")
    # groups of 14 clips: each speaker's own statistics when the model was trained per speaker
    expected = "group" if artifact.scaler.uses_groups(14) else "global"
    assert set(one["normalised_by"].iloc[:28]) == {expected}
    assert one["group"].iloc[0].endswith("spk01") and one["group"].iloc[27].endswith("spk02")


def test_rows_come_in_file_order_whatever_the_chunks(svc_model, folder):
    artifact, _ = svc_model
    files = sorted((folder / "spk02").rglob("*.wav"))[::-1] + sorted((folder / "spk01").rglob("*.wav"))[:3]
    files.insert(2, folder / "zz_odd" / "broken.wav")  # another group, in the middle of spk02's files
    rows = list(iter_file_rows(artifact, files, chunk_size=4))
    assert [r["path"] for r in rows] == [str(f) for f in files]
    frames_equal(pd.DataFrame(rows, columns=FILE_COLUMNS), predict_files(artifact, files, workers=1))


def test_chunk_features_batched_equal_clip_by_clip(svc_model, folder):
    artifact, _ = svc_model
    p = Predictor.of(artifact)
    files = sorted((folder / "spk01").rglob("*.wav"))[:6] + [folder / "zz_odd" / "tone_440.wav"]
    got = featurise_chunk(p.featuriser(), files)
    assert [g.status for g in got] == ["ok"] * 6 + ["no_speech"]
    for path, g in zip(files[:6], got):
        np.testing.assert_allclose(g.raw, p.raw(p.load(path)), atol=2e-3, rtol=1e-3)
    assert got[6].raw is None and got[6].error.startswith("no speech detected")


def test_encoder_threads_times_workers_stay_within_the_cores(svc_model, monkeypatch):
    import dataclasses

    from ser import predict_pool

    monkeypatch.setattr(predict_pool, "available_cores", lambda: 8)
    f = Predictor.of(svc_model[0]).featuriser()
    with_enc = dataclasses.replace(f, features=dataclasses.replace(f.features, encoder=EncoderConfig(threads=0)))
    assert worker_featuriser(with_enc, 2).features.encoder.threads == 4
    assert worker_featuriser(with_enc, 16).features.encoder.threads == 1
    fixed = dataclasses.replace(f, features=dataclasses.replace(f.features, encoder=EncoderConfig(threads=6)))
    assert worker_featuriser(fixed, 4).features.encoder.threads == 2  # 4 x 6 would be 24 threads on 8 cores
    assert worker_featuriser(fixed, 1).features.encoder.threads == 6
    assert worker_featuriser(fixed, 4).features.config_hash() == fixed.features.config_hash()
    assert encoder.effective_threads(worker_featuriser(with_enc, 2).features.encoder) == 4


@pytest.mark.parametrize("suffix", ["csv", "parquet", "json"])
def test_streamed_out_equals_the_in_memory_table(svc_model, folder, tmp_path, suffix):
    artifact, _ = svc_model
    table = predict_files(artifact, [folder])
    streamed, whole = tmp_path / f"streamed.{suffix}", tmp_path / f"whole.{suffix}"
    kept, tally = collect_rows(iter_file_rows(artifact, [folder], chunk_size=7), streamed, keep=4, batch=3)
    write_table(table, whole)
    read = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": lambda p: pd.read_json(p, orient="records")}[suffix]
    frames_equal(read(streamed), read(whole))
    frames_equal(read(streamed), table)
    if suffix != "parquet":
        assert streamed.read_text() == whole.read_text()
    frames_equal(kept, table.head(4))
    assert (tally.rows, tally.ok, tally.no_speech, tally.error) == (30, 28, 1, 1)
    assert tally.failed_files() == failed_files(table) and tally.no_speech == no_speech_files(table)
    assert tally.exit_code() == exit_code(table) == 0
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file was renamed, not left behind


def test_a_failed_stream_leaves_no_out_file(svc_model, folder, tmp_path):
    artifact, _ = svc_model

    def rows():
        yield from iter_file_rows(artifact, [folder / "spk01" / "angry"])
        raise KeyboardInterrupt

    out = tmp_path / "p.csv"
    with pytest.raises(KeyboardInterrupt):
        collect_rows(rows(), out, batch=1)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_tally_of_failures_only_exits_1():
    tally = Tally()
    for status in ("error", "no_speech"):
        tally.add({"path": status, "status": status, "error": "why"})
    table = pd.DataFrame([{"path": "error", "status": "error", "error": "why"},
                          {"path": "no_speech", "status": "no_speech", "error": "why"}])
    assert tally.exit_code() == exit_code(table) == 1 and tally.failed_files() == failed_files(table) == (1, 2)


def test_cli_pool_gives_the_rows_of_one_process(svc_model, folder, tmp_path):
    _, model = svc_model
    outs = {}
    for workers in (1, 2):
        outs[workers] = tmp_path / f"w{workers}.json"
        result = CliRunner().invoke(app, ["predict", str(folder), "--model", str(model), "--workers", str(workers),
                                          "--out", str(outs[workers])])
        assert result.exit_code == 0, result.output
        assert "1 of 30 file(s) could not be read" in " ".join(result.output.split())
    one, two = (pd.DataFrame(json.loads(outs[w].read_text()), columns=FILE_COLUMNS) for w in (1, 2))
    frames_equal(one, two, atol=1e-6)
    assert len(one) == 30


def test_sklearn_model_predicts_without_importing_tensorflow(svc_model, folder):
    artifact, model = svc_model
    assert artifact.model.framework == "sklearn"
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom ser.cli import app\n"
            f"r = CliRunner().invoke(app, ['predict', {str(folder / 'spk01' / 'sad')!r}, '--model', {str(model)!r}, "
            "'--workers', '1'])\n"
            "assert r.exit_code == 0, r.output\n"
            "print('ROWS', r.output.count('spk01_sad_'), 'TF', 'tensorflow' in sys.modules, 'KERAS', 'keras' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ROWS 2 TF False KERAS False" in done.stdout


def test_rows_stream_out_before_the_folder_is_done(svc_model, folder):
    artifact, _ = svc_model
    seen = []
    rows = iter_file_rows(artifact, [folder], on_file=lambda: seen.append(1), chunk_size=5)
    first = next(rows)
    assert Path(first["path"]).parent.parent.name == "spk01"
    assert 14 <= len(seen) < 30  # spk01's group (14 files) is scored and out; spk02's files are not all read
    assert len(list(rows)) == 29 and len(seen) == 30


def test_progress_shows_clips_per_second():
    from ser.console import RateColumn, progress

    assert not any(isinstance(c, RateColumn) for c in progress().columns)
    bar = progress("clips")
    column = next(c for c in bar.columns if isinstance(c, RateColumn))
    now = [0.0]
    bar.get_time = lambda: now[0]  # a clock the test moves
    task_id = bar.add_task("predict", total=40)
    task = bar.tasks[0]
    assert column.render(task).plain == "- clips/s"
    for t in (1.0, 2.0, 3.0):
        now[0] = t
        bar.advance(task_id, 8)
    assert column.render(task).plain == "8.0 clips/s"


def test_one_clip_with_egemaps_beside_the_encoder_gives_the_sequential_values(clips):
    """Predictor.raw computes eGeMAPS on a second thread while the encoder runs: the same vector, value for
    value, as ser.features.extract_pooled_vector computes one set after the other."""
    from ser.audio import load_audio
    from ser.features import FeatureConfig, extract_pooled_vector, pooled_feature_names
    from ser.predictor import fused_vector

    cfg = FeatureConfig(opensmile="eGeMAPSv02", encoder=EncoderConfig(pad_s=5))
    for path in clips[:3]:
        audio = load_audio(path, cfg.sample_rate)
        fused = fused_vector(audio, cfg)
        assert fused.dtype == np.float32 and len(fused) == len(pooled_feature_names(cfg))
        np.testing.assert_array_equal(fused, extract_pooled_vector(audio, cfg))
    plain = FeatureConfig()  # nothing to run beside: the sequential path itself
    np.testing.assert_array_equal(fused_vector(audio, plain), extract_pooled_vector(audio, plain))
