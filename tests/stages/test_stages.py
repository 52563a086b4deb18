"""Every stage's `main` run in-process, in DAG order, on a tiny demo corpus: the whole pipeline end to end.

The stages write to the paths dvc.yaml declares (relative to the project root), so the run happens in
a temporary project folder; the features stage runs its chunks serially (no Prefect).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ser.console import StageError
from ser.params import load_params
from ser.stages import (cross_corpus, cv, demo_corpus, features, ingest, loso, manifest, report, select_best, train,
                        validate)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder with a small params.yaml (10 speakers, 2 clips per emotion, two quick models)."""
    base = tmp_path_factory.mktemp("project")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["demo"].update(speakers=10, utterances_per_emotion=2)
    raw["corpora"] = {"demo": {"format": "folder", "root": "data/raw/demo"}}
    raw["augment"]["copies"] = 0
    raw["features"].update(opensmile=None, logmel_frames=40)
    raw["models"] = {"logistic": {"kind": "logistic", "C": 0.1, "max_iter": 500},
                     "knn": {"kind": "knn", "n_neighbors": 3}}
    raw["train"]["loso"] = ["logistic"]
    raw["cv"]["models"] = ["logistic"]
    raw["split"]["ratios"] = {"train": 0.6, "val": 0.2, "test": 0.2}
    (base / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return base


def test_the_stages_run_end_to_end(project, monkeypatch):
    monkeypatch.chdir(project)
    p = load_params("params.yaml")

    out = demo_corpus.main(p)
    assert len(list(out.rglob("*.wav"))) == 10 * 2 * 7

    summary = ingest.main(p, Path("data/interim/ingest/demo.parquet"), name="demo")
    assert summary["demo"]["kept"] == 140 and summary["demo"]["speakers"] == 10

    split = manifest.main(p)
    assert sum(s["utterances"] for s in split["splits"].values()) == 140
    assert Path("data/interim/by_corpus/demo.parquet").is_file() and Path("plots/splits.png").is_file()

    feats = features.main(p, "demo", Path("data/interim/by_corpus/demo.parquet"))
    assert (feats["utterances"], feats["augmented_rows"], feats["quarantined"]) == (140, 0, 0)
    assert json.loads(Path("metrics/features/demo.json").read_text()) == feats
    again = features.build(p, Path("data/interim/by_corpus/demo.parquet"), Path("data/features"), "demo")
    assert again["summary"]["extracted_chunks"] == 0  # finished chunks are never redone

    reports = validate.main(p)
    assert all(r.success for r in reports) and Path("reports/validation.md").is_file()

    for model in p.models:
        scores = train.main(p, model)
        assert 0 <= scores["test"]["uar"] <= 1 and Path(f"models/zoo/{model}/artifact.json").is_file()
        assert len(pd.read_csv(f"plots/models/{model}/predictions.csv")) == split["splits"]["test"]["utterances"]
        val = pd.read_csv(f"plots/models/{model}/val_predictions.csv")
        assert list(val.columns) == ["utt_id", "actual", "predicted"]
        assert len(val) == split["splits"]["val"]["utterances"]
        assert Path(f"plots/models/{model}/confusion_by_corpus.png").is_file()
        # no epochs: a header-only history table and no history picture (DVC declares none for it)
        assert Path(f"plots/models/{model}/history.csv").read_text().strip() == "epoch"
        assert not {"epochs_run", "stop_reason"} & set(json.loads(Path(f"metrics/models/{model}.json").read_text()))
        assert not Path(f"plots/models/{model}/history.png").exists()

    folds = loso.main(p, "logistic")
    assert folds["folds"] == 10 and Path("metrics/loso/logistic.json").is_file()
    assert Path("plots/loso/logistic.png").is_file()  # UAR per held-out speaker

    # above train.loso_max_speakers the stage records why it did not run, instead of one fit per speaker
    capped = p.model_copy(update={"train": p.train.model_copy(update={"loso_max_speakers": 9})})
    skipped = loso.main(capped, "knn")
    assert skipped["skipped"] is True and (skipped["speakers"], skipped["loso_max_speakers"]) == (10, 9)
    assert json.loads(Path("metrics/loso/knn.json").read_text()) == skipped and "cv@knn" in skipped["reason"]
    assert Path("plots/loso/knn.png").stat().st_size > 0

    summary = cv.main(p, "logistic")
    assert (summary["k"], summary["n_speakers"], summary["n"]) == (5, 10, 140)
    assert "per_speaker" not in summary and json.loads(Path("metrics/cv/logistic.json").read_text()) == summary
    detail = json.loads(Path("reports/cv/logistic.json").read_text())
    assert len(detail["per_speaker"]) == 10 and sorted(len(f["speakers"]) for f in detail["per_fold"]) == [2] * 5
    low, high = summary["uar_corpus_mean"]["ci"]
    assert low <= summary["uar_corpus_mean"]["uar"] <= high and Path("plots/cv/logistic.png").is_file()
    assert len(pd.read_parquet("reports/cv/logistic.predictions.parquet")) == 140

    crossed = cross_corpus.main(p)  # one demo corpus: a note, not a failure
    assert crossed == {"model": "logistic", "uar": {}, "loco_uar": {}}
    assert "One corpus configured" in Path("reports/cross_corpus.md").read_text()
    assert Path("plots/cross_corpus.png").is_file()

    top = select_best.main(p)
    vals = {m: json.loads(Path(f"metrics/models/{m}.json").read_text())["val"]["uar"] for m in p.models}
    assert top["model"] == max(vals, key=vals.get)  # one corpus: the mean of per-corpus UARs is the val UAR
    assert top["val_uar"] == pytest.approx(vals[top["model"]], abs=1e-4)
    assert json.loads(Path("models/best/artifact.json").read_text())["name"] == top["model"]
    assert not [x for x in Path("models").iterdir() if x.name.startswith(".")]  # no temp folder left
    assert Path("plots/per_corpus.png").is_file() and Path("reports/leaderboard.md").is_file()

    page = report.main(p).read_text(encoding="utf-8")
    assert f"<b>{top['model']}</b>" in page and "140 clips from 10 speakers in 1 corpora" in page
    assert page.count('src="data:image/png;base64,') >= 2 * len(p.models) and "http" not in page
    cv_low, cv_high = summary["uar_corpus_mean"]["ci"]
    assert (f'<tr><td>mean of per-corpus UARs</td><td class="n">{summary["uar_corpus_mean"]["uar"]:.4f}</td>'
            f'<td>[{cv_low:.4f}, {cv_high:.4f}]</td><td class="n">10</td><td class="n">140</td></tr>') in page
    assert (f"{top['model']}: mean of per-corpus validation UARs {top['val_uar']:.4f}, 95% CI "
            f"[{top['val_uar_ci_low']:.4f}, {top['val_uar_ci_high']:.4f}] over 2 validation speakers") in page


def _rewrite_val(model: str, right: bool) -> None:
    """Make a model's validation predictions all right or all wrong."""
    path = Path(f"plots/models/{model}/val_predictions.csv")
    val = pd.read_csv(path)
    wrong = val["actual"].map(lambda e: "sad" if e == "neutral" else "neutral")
    val.assign(predicted=val["actual"] if right else wrong).to_csv(path, index=False)


def test_select_best_ranks_on_validation_speakers_never_test(project, monkeypatch):
    monkeypatch.chdir(project)  # the end-to-end run above left its outputs here
    p = load_params("params.yaml")
    knn = json.loads(Path("metrics/models/knn.json").read_text())
    knn["test"]["uar"] = 1.0  # knn is the best on test ...
    Path("metrics/models/knn.json").write_text(json.dumps(knn))
    _rewrite_val("knn", right=False)  # ... and the worst on validation
    _rewrite_val("logistic", right=True)
    top = select_best.main(p)
    m = pd.read_parquet("data/interim/manifest.parquet")
    n_val = m.loc[m["split"] == "val", "speaker"].nunique()
    assert top["model"] == "logistic" and top["runner_up"] == "knn"
    assert (top["val_uar"], top["val_uar_ci_low"], top["val_uar_ci_high"]) == (1.0, 1.0, 1.0)
    assert top["val_speakers"] == n_val == 2 and top["val_method"] == "val split"
    assert top["top_two_ci_overlap"] is False
    assert json.loads(Path("metrics/best.json").read_text()) == top
    board = Path("reports/leaderboard.md").read_text()
    table = [line for line in board.splitlines() if line.startswith("|")]
    assert table[0].startswith("| # | model | kind | val_uar | val_uar_ci_low | val_uar_ci_high | val_method | "
                               "val_speakers | test_uar")
    assert table[2].startswith(f"| 1 | logistic | logistic | 1.0000 | 1.0000 | 1.0000 | val split | {n_val} |")
    assert table[3].startswith(f"| 2 | knn | knn | 0.0000 | 0.0000 | 0.0000 | val split | {n_val} | 1.0000 |")
    assert "not distinguishable" not in board

    _rewrite_val("knn", right=True)  # a tie: the intervals overlap, the order is the params order as before
    top = select_best.main(p)
    assert top["model"] == "logistic" and top["top_two_ci_overlap"] is True
    assert ("The top two (logistic, knn) have overlapping validation intervals: not distinguishable on these "
            "speakers.") in Path("reports/leaderboard.md").read_text()

    Path("plots/models/knn/val_predictions.csv").unlink()
    with pytest.raises(StageError, match="val_predictions.csv is missing: retrain the model"):
        select_best.main(p)


def test_a_stage_refuses_an_unknown_model(project):
    with pytest.raises(StageError, match="model 'nope' is not in params.yaml models"):
        train.main(load_params(project / "params.yaml"), "nope")


def test_a_keras_model_metrics_say_how_it_stopped(project, monkeypatch):
    monkeypatch.chdir(project)  # features from the end-to-end run above
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["models"]["keras_mlp"] = {"kind": "keras_mlp", "units": [8]}
    raw["train"]["keras"].update(epochs=2, early_stopping_patience=5)
    Path("params_keras.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    flat = train.main(load_params("params_keras.yaml"), "keras_mlp")
    written = json.loads(Path("metrics/models/keras_mlp.json").read_text())
    # both epochs ran; two epochs are too few to call validation loss still falling
    assert (written["epochs_run"], written["stop_reason"]) == (2, "epochs") == (flat["epochs_run"], flat["stop_reason"])
    assert len(pd.read_csv("plots/models/keras_mlp/history.csv")) == 2
