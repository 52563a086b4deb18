"""Bad params fail before any work starts, with a message that names the key (or the corpus/model).

`ser.params.load_params` checks the whole file (tests/test_params.py covers corpora, labels, split,
ingest, demo); here: the `runner`, `models` and `train.loso` checks, and the same failures as a user
meets them through the CLI and the features flow's entry point.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ser.cli import app
from ser.params import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def write_params(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


@pytest.mark.parametrize("edit, key, detail", [
    (lambda r: r["models"].update(x={"kind": "nope"}), "models.x.kind", "unknown model kind 'nope'; known kinds:"),
    (lambda r: r["models"].update(x={"C": 1.0}), "models.x.kind", "Field required"),
    (lambda r: r["models"].update(x=3), "models.x", "valid dictionary"),
    (lambda r: r["models"].update({"a/b": {"kind": "svc"}}), "models", "model name 'a/b'"),
    (lambda r: r["train"].update(loso=["svc", "ghost"]), "train.loso", "'ghost', not configured under models"),
    (lambda r: r["cv"].update(models=["ghost"]), "cv.models", "'ghost', not configured under models"),
    (lambda r: r["cv"].update(cross_corpus_model="ghost"), "cv.cross_corpus_model", "'ghost' is not configured"),
    (lambda r: r["cv"].update(k=1), "cv.k", "greater than or equal to 2"),
    (lambda r: r["split"].update(min_eval_speakers=0), "split.min_eval_speakers", "greater than or equal to 1"),
    (lambda r: r["runner"].update(kind="dask"), "runner.kind", "'process' or 'thread'"),
    (lambda r: r["runner"].update(workers=0), "runner.workers", "greater than or equal to 1"),
    (lambda r: r["runner"].update(chunk_size=0), "runner.chunk_size", "greater than or equal to 1"),
    (lambda r: r["runner"].update(wrokers=2), "runner.wrokers", "Extra inputs are not permitted"),
    (lambda r: r["split"].update(ratios={"train": 1.1, "val": -0.1, "test": 0.0}), "split.ratios",
     "ratio val is negative"),
])
def test_bad_values_name_their_key(tmp_path, edit, key, detail):
    with pytest.raises(ParamsError) as err:
        load_params(write_params(tmp_path, edit))
    message = str(err.value)
    assert key in message and detail in message, message


def test_project_models_and_runner_validate():
    p = load_params(ROOT / "params.yaml")
    assert p.models["svc"].kind == "svc" and p.models["svc"].model_extra["C"] == 10.0
    assert set(p.train.loso) <= set(p.models)
    assert (p.runner.kind, p.runner.workers) == ("process", 2) and p.runner.chunk_size >= 1


def test_sections_may_be_left_out(tmp_path):
    path = write_params(tmp_path, lambda r: [r.pop(k) for k in ("models", "train", "runner", "cv")])
    p = load_params(path)
    assert p.models == {} and p.train.loso == [] and p.runner.workers == 2
    assert (p.cv.k, p.cv.models, p.cv.cross_corpus_model) == (5, [], None)


# --- through the CLI --------------------------------------------------------------------------------

def test_ingest_with_a_missing_root_names_the_corpus_and_folder(tmp_path):
    missing = tmp_path / "nowhere" / "corpus"
    params = write_params(tmp_path, lambda r: r.update(corpora={"mine": {"format": "folder", "root": str(missing)}}))
    out = tmp_path / "out" / "mine.parquet"
    result = runner.invoke(app, ["ingest", "--name", "mine", "--out", str(out), "--params", str(params)])
    assert result.exit_code == 1
    assert f"corpus mine: root folder {missing} does not exist" in flat(result.output)
    assert not out.parent.exists()  # nothing was written


def test_ingest_with_an_unknown_format_names_the_key(tmp_path):
    params = write_params(tmp_path, lambda r: r.update(corpora={"mine": {"format": "wavs", "root": str(tmp_path)}}))
    result = runner.invoke(app, ["ingest", "--name", "mine", "--out", str(tmp_path / "m.parquet"),
                                 "--params", str(params)])
    assert result.exit_code == 2
    assert "corpora.mine.format" in flat(result.output) and "unknown corpus format 'wavs'" in flat(result.output)


def test_ingest_of_an_unconfigured_corpus_names_it(tmp_path):
    result = runner.invoke(app, ["ingest", "--name", "ghost", "--out", str(tmp_path / "m.parquet"),
                                 "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 1 and "corpus 'ghost' is not configured" in flat(result.output)


def test_manifest_with_a_negative_ratio_names_the_key(tmp_path):
    params = write_params(tmp_path, lambda r: r["split"].update(ratios={"train": 0.8, "val": 0.3, "test": -0.1}))
    out = tmp_path / "manifest.parquet"
    result = runner.invoke(app, ["manifest", "--in", str(tmp_path / "missing"), "--out", str(out),
                                 "--params", str(params)])
    assert result.exit_code == 2
    assert "split.ratios" in flat(result.output) and "ratio test is negative (-0.1)" in flat(result.output)
    assert not out.exists()


@pytest.mark.parametrize("command", ["train", "loso"])
def test_an_unknown_model_name_is_named(tmp_path, command):
    result = runner.invoke(app, [command, "--model", "nope", "--features", str(tmp_path / "none"),
                                 "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 1
    assert "model 'nope' is not in params.yaml models:" in flat(result.output)


def test_train_with_an_unknown_model_kind_fails_on_the_params(tmp_path):
    params = write_params(tmp_path, lambda r: r["models"].update(svc={"kind": "svm", "C": 1.0}))
    result = runner.invoke(app, ["train", "--model", "svc", "--features", str(tmp_path / "none"),
                                 "--params", str(params)])
    assert result.exit_code == 2
    assert "models.svc.kind" in flat(result.output) and "unknown model kind 'svm'" in flat(result.output)


def test_features_flow_checks_params_before_any_work(tmp_path):
    from flows.features import main

    params = write_params(tmp_path, lambda r: r["runner"].update(workers=0))
    with pytest.raises(ParamsError, match="runner.workers"):
        # the manifest does not exist: the error must come first, before Prefect or any file is touched
        main(corpus="demo", manifest=tmp_path / "no-manifest.parquet", out=tmp_path / "features",
             params_path=params, metrics=tmp_path / "metrics")
    assert not (tmp_path / "features").exists() and not (tmp_path / "metrics").exists()
