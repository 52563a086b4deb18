"""`ser check` validates every section without doing any work, and names the bad key (exit 2)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ser.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())


def set_key(raw: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for key in path:
        raw = raw[key]
    raw[last] = value


# one bad value per section: (key, value, what the message says)
BAD = [
    ("seed", "x", "seed: Input should be a valid integer"),
    ("corpora.demo.format", "wav", "unknown corpus format 'wav'"),
    ("demo.speakers", 3, "demo.speakers: Input should be greater than or equal to 8"),
    ("ingest.workers", 0, "ingest.workers: Input should be greater than or equal to 1"),
    ("labels.folder.angry", "furious", "'furious' is not one of"),
    ("split.protocol", "random", "split.protocol: Input should be 'speaker' or 'cross_corpus'"),
    ("audio.normalize", "peek", "audio.normalize: Input should be 'none', 'peak' or 'rms'"),
    ("augment.copies", -3, "augment.copies: Input should be greater than or equal to 0"),
    ("augment.noise.p", 1.5, "augment.noise.p: Input should be less than or equal to 1"),
    ("features.n_mfcc", "twenty", "features.n_mfcc: Input should be a valid integer"),
    ("features.fmax", 12000, "features.fmax (12000) must be at most audio.sample_rate / 2 (8000)"),
    ("runner.kind", "dask", "runner.kind: Input should be 'process' or 'thread'"),
    ("validate.min_rows_per_class", -1, "validate.min_rows_per_class: Input should be greater than or equal to 0"),
    ("normalize.mode", "speakr", "normalize.mode: Input should be 'none' or 'speaker'"),
    ("train.keras.optimizer", "adamm", "train.keras.optimizer: Input should be 'adam',"),
    ("train.fraction", 0, "train.fraction: Input should be greater than 0"),
    ("models.svc.kind", "svm", "unknown model kind 'svm'"),
    ("schedule.cron", "daily", "cron 'daily' must have five fields"),
    ("features.unknown_knob", 1, "features.unknown_knob: Extra inputs are not permitted"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[b[0] for b in BAD])
def test_check_names_the_bad_key(tmp_path, monkeypatch, key, value, message):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    set_key(raw, key, value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "--params", str(path)])
    assert result.exit_code == 2, result.output
    assert message.lower() in flat(result.output).lower(), result.output


def test_check_passes_the_project_params_and_names_a_missing_corpus_root(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0 and "ok" in result.output
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["corpora"]["tess"] = {"format": "tess", "root": str(tmp_path / "no-tess")}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = runner.invoke(app, ["check", "--params", str(path)])
    assert result.exit_code == 2 and "corpora.tess.root: folder" in flat(result.output)


def test_version_and_short_help():
    assert runner.invoke(app, ["--version"]).output.strip().startswith("ser ")
    result = runner.invoke(app, ["predict", "-h"])
    assert result.exit_code == 0 and "<bool>" not in result.output and "<list[" not in result.output
    assert "{paths}" not in result.output and "PATH..." in result.output


def test_check_wants_audio_under_each_corpus_root_and_prints_one_line_per_section(tmp_path, monkeypatch):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    tess = tmp_path / "tess" / "OAF_angry"
    tess.mkdir(parents=True)
    (tess / "notes.txt").write_text("not audio")
    raw["corpora"]["tess"] = {"format": "tess", "root": str(tmp_path / "tess")}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "--params", str(path)])
    assert result.exit_code == 2, result.output
    assert f"corpora.tess.root: folder {tmp_path / 'tess'} holds no audio file" in flat(result.output)

    (tess / "OAF_back_angry.wav").write_bytes(b"RIFF")  # check looks at names only; ingest decodes
    (tess / "OAF_bar_angry.wav").write_bytes(b"RIFF")
    result = runner.invoke(app, ["check", "--params", str(path)])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    for section in ("seed", "audio", "augment", "features", "normalize", "train", "validate", "split",
                    "demo", "ingest", "labels", "runner", "models", "schedule"):
        assert f"{section}: ok" in lines, (section, result.output)
    assert "predict: ok (defaults)" in lines  # params.yaml has no predict: block
    assert f"corpora.tess: ok ({tmp_path / 'tess'}: 2 audio files)" in flat(result.output)
    assert "corpora.demo: ok (data/raw/demo not written yet: `ser demo-corpus` writes it)" in lines
    assert flat(result.output).endswith(f"ok (2 corpora, {len(raw['models'])} models)")
