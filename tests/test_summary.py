"""ser.summary: the short text `make run` ends with, read from the metrics files DVC tracks."""
from __future__ import annotations

import json
from pathlib import Path

from ser.summary import main, model_scores, summary


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def repo(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text("models:\n  svc: {kind: svc}\n  cnn2d: {kind: cnn2d}\n"
                                          "  logistic: {kind: logistic}\n")
    for name, val, test in (("logistic", 0.61, 0.58), ("svc", 0.7143, 0.66), ("cnn2d", 0.7143, 0.52)):
        write(tmp_path / "metrics" / "models" / f"{name}.json",
              {"train_s": 1.0, "val": {"uar": val, "uar_ravdess": val},
               "test": {"uar": test, "uar_ravdess": test - 0.1, "uar_tess": test + 0.1}})
    write(tmp_path / "metrics" / "loso" / "svc.json", {"uar_mean": 0.6012, "uar_std": 0.0831, "folds": 26})
    write(tmp_path / "metrics" / "manifest.json",
          {"utterances": 1653, "speakers": 80, "splits": {"train": {"speakers": 56}, "val": {"speakers": 12},
                                                          "test": {"speakers": 12}}})
    return tmp_path


def test_rank_is_validation_uar_with_ties_in_params_order(tmp_path):
    rows = model_scores(repo(tmp_path))
    assert [r["model"] for r in rows] == ["svc", "cnn2d", "logistic"]
    assert rows[0]["corpora"] == {"ravdess": 0.56, "tess": 0.76}


def test_a_model_removed_from_params_is_not_ranked(tmp_path):
    root = repo(tmp_path)
    write(root / "metrics" / "models" / "dual_cnn_lstm.json", {"train_s": 1.0, "val": {"uar": 0.99}, "test": {"uar": 0.99}})
    assert [r["model"] for r in model_scores(root)] == ["svc", "cnn2d", "logistic"]


def test_summary_is_short_and_says_where_to_look(tmp_path):
    text = summary(repo(tmp_path), top=2)
    lines = text.splitlines()
    assert len(lines) <= 10 and max(len(line) for line in lines) <= 100
    assert lines[0] == "1653 utterances, 80 speakers (train/val/test 56/12/12); chance UAR 0.143"
    assert lines[3].split() == ["1", "svc", "0.714", "0.660"]
    assert lines[4].split() == ["2", "cnn2d", "0.714", "0.520"]
    assert "logistic" not in text.split("per corpus")[0]  # only the top 2 listed
    assert "test UAR per corpus, svc: ravdess 0.560, tess 0.760" in text
    assert "leave-one-speaker-out UAR: svc 0.601 ± 0.083 (26 speakers)" in text
    assert "reports/leaderboard.md" in text


def test_no_metrics_says_what_to_run(tmp_path, capsys):
    assert main(["--root", str(tmp_path)]) == 0
    assert "run `dvc repro` first" in capsys.readouterr().out


def test_points_at_the_run_report_once_it_exists(tmp_path):
    root = repo(tmp_path)
    assert "reports/index.html" not in summary(root)
    (root / "reports").mkdir()
    (root / "reports" / "index.html").write_text("<html></html>")
    assert summary(root).splitlines()[-1].startswith("run report: reports/index.html; table: reports/leaderboard.md")


def test_a_keras_model_stopped_at_its_cap_while_still_improving_is_named(tmp_path):
    root = repo(tmp_path)
    assert "epoch cap" not in summary(root)
    cnn2d = json.loads((root / "metrics" / "models" / "cnn2d.json").read_text())
    write(root / "metrics" / "models" / "cnn2d.json", {**cnn2d, "epochs_run": 30, "stop_reason": "epoch_cap_still_falling"})
    write(root / "metrics" / "models" / "keras_mlp.json",
          {"train_s": 2.0, "val": {"uar": 0.4}, "test": {"uar": 0.4}, "epochs_run": 12, "stop_reason": "early_stopping"})
    rows = {r["model"]: r for r in model_scores(root)}
    assert (rows["cnn2d"]["epochs_run"], rows["cnn2d"]["stop_reason"]) == (30, "epoch_cap_still_falling")
    assert (rows["svc"]["epochs_run"], rows["svc"]["stop_reason"]) == (None, None)  # not trained by epochs
    capped = [line for line in summary(root, top=1).splitlines() if "cap" in line]
    assert capped == ["cnn2d stopped at its 30-epoch cap with validation loss still falling "
                      "(raise train.keras.epochs to let early stopping decide)"]  # named though not in the top 1
