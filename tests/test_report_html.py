"""The run report: every section from the pipeline's real outputs, "not run" for what is absent, no link out."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ser import EMOTIONS
from ser.report_html import main, render_run_report, write_run_report

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_root(run_outputs) -> Path:
    return run_outputs


@pytest.fixture(scope="module")
def page(run_root) -> str:
    return render_run_report(run_root)


def section(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, f"no section {anchor}"
    return match.group(1)


def test_every_section_in_reading_order(page):
    anchors = re.findall(r'<section id="([a-z-]+)">', page)
    assert anchors == ["data", "validation", "leaderboard", "scores", "cv", "confusion", "cross-corpus", "curves",
                       "best", "params"]


def test_data_counts_split_and_quarantine_reasons(page, run_root):
    m = pd.read_parquet(run_root / "data" / "interim" / "manifest.parquet")
    summary = json.loads((REPO / "metrics" / "manifest.json").read_text())
    assert len(m) == summary["utterances"] and m["speaker"].nunique() == summary["speakers"]
    data = section(page, "data")
    assert f"{len(m)} clips from {m['speaker'].nunique()} speakers in 1 corpora" in data
    for split, s in summary["splits"].items():
        assert (f'<td>{split}</td><td>demo</td><td class="n">{s["utterances"]}</td>'
                f'<td class="n">{s["speakers"]}</td>') in data
    assert "label &#x27;bored&#x27; maps to no emotion" in data and "0.050 s of audio after trimming" in data
    assert "2 file(s) left out" in data and "<td>features</td>" in data and "<td>ingest / manifest</td>" in data


def test_validation_leaderboard_and_best_from_the_committed_outputs(page):
    assert "✓ all tables passed" in section(page, "validation")
    board = section(page, "leaderboard")
    assert board.count("<tr>") == 1 + len(list((REPO / "metrics" / "models").glob("*.json")))
    assert "No confidence intervals" in board
    best = json.loads((REPO / "metrics" / "best.json").read_text())
    assert f"<b>{best['model']}</b>" in section(page, "best")
    assert f"{best['val_uar']:.4f}" in section(page, "best")
    assert "min_group_size: 10" in section(page, "params")


def test_per_corpus_and_per_gender_scores(page, run_root):
    preds = pd.read_csv(REPO / "plots" / "models" / "svc" / "predictions.csv")
    genders = pd.read_parquet(run_root / "data" / "interim" / "manifest.parquet").set_index("utt_id")["gender"]
    preds = preds.assign(gender=preds["utt_id"].map(genders))
    assert preds["gender"].notna().all()  # the manifest is the one these predictions came from
    scores = section(page, "scores")
    assert "no row in the manifest" not in scores
    svc_row = scores.split("<td>svc</td>", 1)[1].split("</tr>", 1)[0]
    test = json.loads((REPO / "reports" / "models" / "svc.json").read_text())["scores"]["test"]["by_corpus"]["demo"]
    assert f"{test['uar']:.4f}" in svc_row
    gender_table = scores.split("UAR per gender", 1)[1]
    svc_row = gender_table.split("<td>svc</td>", 1)[1].split("</tr>", 1)[0]
    for gender, part in preds.groupby("gender"):
        recalls = [(part.loc[part["actual"] == e, "predicted"] == e).mean() for e in EMOTIONS if (part["actual"] == e).any()]
        assert f"<th>{gender} UAR ({len(part)} clips)</th>" in gender_table
        assert f"{sum(recalls) / len(recalls):.4f}" in svc_row
    assert "Leave-one-speaker-out" in scores and "<td>logistic</td>" in scores


def test_images_are_inlined_and_nothing_links_out(page):
    confusions = sorted((REPO / "plots" / "models").glob("*/confusion.png"))
    assert section(page, "confusion").count('src="data:image/png;base64,') == len(confusions) > 0
    keras = [p.stem for p in (REPO / "reports" / "models").glob("*.json") if json.loads(p.read_text())["history"]]
    assert section(page, "curves").count("<img") == len(keras) > 0
    assert re.findall(r'(?:src|href)="(?!data:|#)', page) == []
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_cross_corpus_not_run_then_included(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    for name in ("reports/cross_corpus.md", "plots/cross_corpus.png", "metrics/cross_corpus.json"):
        (root / name).unlink(missing_ok=True)  # a run without the cross_corpus stage
    assert "not run" in section(render_run_report(root), "cross-corpus")
    (root / "reports" / "cross_corpus.md").write_text("| train \\ test | tess | savee |\n|---|---:|---:|\n"
                                                      "| tess | 0.91 | 0.22 |\n")
    shutil.copy(REPO / "plots" / "leaderboard.png", root / "plots" / "cross_corpus.png")
    cross = section(render_run_report(root), "cross-corpus")
    assert "not run" not in cross and ">0.22</td>" in cross and cross.count("<img") == 1


def test_cv_section_shows_every_score_with_its_speaker_interval(run_root, tmp_path):
    from ser.cv import plot_cv, speaker_folds, summarize

    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    for name in ("metrics/cv", "plots/cv", "reports/cv"):
        shutil.rmtree(root / name, ignore_errors=True)  # a run without cv@ stages
    assert "not run: no metrics/cv/*.json" in section(render_run_report(root), "cv")
    # a real CV summary: the committed svc test predictions, folded by speaker as ser.cv does
    m = pd.read_parquet(root / "data" / "interim" / "manifest.parquet").set_index("utt_id")
    pred = pd.read_csv(REPO / "plots" / "models" / "svc" / "predictions.csv").join(
        m[["corpus", "speaker", "gender"]], on="utt_id")
    pred["fold"] = pred["speaker"].map(speaker_folds(pred, k=2, seed=42))
    report = {"model": "svc", "kind": "svc", "protocol": "speaker-grouped 2-fold", "k": 2,
              **summarize(pred, n_boot=200, seed=42)}
    (root / "metrics" / "cv").mkdir()
    (root / "metrics" / "cv" / "svc.json").write_text(json.dumps(report))
    plot_cv(report, root / "plots" / "cv" / "svc.png")
    cv = section(render_run_report(root), "cv")
    assert "svc (svc): speaker-grouped 2-fold" in cv and cv.count('src="data:image/png;base64,') == 1
    assert f"{report['n']} clips from {report['n_speakers']} speakers; 200 bootstrap draws, seed 42" in cv

    def row(label: str, entry: dict, speakers, clips) -> str:
        low, high = entry["ci"]
        return (f'<tr><td>{label}</td><td class="n">{entry["uar"]:.4f}</td><td>[{low:.4f}, {high:.4f}]</td>'
                f'<td class="n">{speakers}</td><td class="n">{clips}</td></tr>')

    demo = report["uar_by_corpus"]["demo"]
    assert row("UAR demo", demo, demo["speakers"], demo["n"]) in cv
    assert row("mean of per-corpus UARs", report["uar_corpus_mean"], report["n_speakers"], report["n"]) in cv
    assert row("UAR pooled over clips", report["uar_pooled"], report["n_speakers"], report["n"]) in cv
    assert set(report["by_gender"]) == {"female", "male"}
    for gender, entry in report["by_gender"].items():
        assert row(f"UAR {gender}", entry, entry["speakers"], entry["n"]) in cv
    gap = report["gender_gap"]
    assert gap["corpora"] == ["demo"]
    assert (f'<tr><td>female − male gap (within demo)</td><td class="n">{gap["female_minus_male"]:.4f}</td>'
            f'<td>[{gap["ci"][0]:.4f}, {gap["ci"][1]:.4f}]</td><td></td><td></td></tr>') in cv


def test_cross_corpus_metrics_table(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    (root / "metrics" / "cross_corpus.json").write_text(json.dumps(
        {"model": "logistic", "uar": {"tess->savee": 0.2231, "savee->tess": 0.3102}, "loco_uar": {"savee": 0.2874}}))
    cross = section(render_run_report(root), "cross-corpus")
    assert "metrics/cross_corpus.json (model logistic)" in cross
    assert '<tr><td>tess</td><td>savee</td><td class="n">0.2231</td></tr>' in cross
    assert '<tr><td>savee</td><td>tess</td><td class="n">0.3102</td></tr>' in cross
    assert '<tr><td>every other corpus</td><td>savee</td><td class="n">0.2874</td></tr>' in cross


def test_leaderboard_validation_intervals(run_root, tmp_path):
    from ser.evaluate import leaderboard, leaderboard_markdown, top_two_overlap

    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    rows = [{"model": "svc", "kind": "svc", "val_uar": 0.8123, "val_uar_ci_low": 0.7011, "val_uar_ci_high": 0.9002,
             "val_method": "val split", "val_speakers": 4, "test_uar": 0.7},
            {"model": "logistic", "kind": "logistic", "val_uar": 0.7755, "val_uar_ci_low": 0.6504,
             "val_uar_ci_high": 0.8809, "val_method": "val split", "val_speakers": 4, "test_uar": 0.9}]
    board = leaderboard(rows)
    (root / "reports" / "leaderboard.md").write_text(leaderboard_markdown(board))
    best = {**rows[0], "runner_up": "logistic", "top_two_ci_overlap": top_two_overlap(board)}
    (root / "metrics" / "best.json").write_text(json.dumps(best))
    page = render_run_report(root)
    said = ("svc: mean of per-corpus validation UARs 0.8123, 95% CI [0.7011, 0.9002] over 4 validation speakers "
            "(resampled). Its interval overlaps the runner-up&#x27;s (logistic): not distinguishable on these speakers.")
    assert said in section(page, "leaderboard") and said in section(page, "best")
    board_html = section(page, "leaderboard")
    assert '<th style="text-align:right">val_uar_ci_low</th>' in board_html
    assert '<td style="text-align:right">0.7011</td>' in board_html and '<td>val split</td>' in board_html
    assert "The top two (svc, logistic) have overlapping validation intervals" in board_html


def test_confidence_intervals_and_escaping(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    svc = json.loads((root / "metrics" / "models" / "svc.json").read_text())
    svc["test"]["uar_ci"] = [0.9012, 0.9733]
    (root / "metrics" / "models" / "svc.json").write_text(json.dumps(svc))
    (root / "reports" / "validation.md").write_text("# Data validation\n\n✗ 1 table failed <script>alert(1)</script>\n")
    page = render_run_report(root)
    assert "<td>svc</td><td>[0.901, 0.973]</td>" in section(page, "leaderboard")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in section(page, "validation")


def test_why_each_keras_model_stopped(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    metrics = root / "metrics" / "models"
    stops = {"cnn1d": {"epochs_run": 30, "stop_reason": "epoch_cap_still_falling"},
             "keras_mlp": {"epochs_run": 17, "stop_reason": "early_stopping"}}
    for name, stop in stops.items():
        m = json.loads((metrics / f"{name}.json").read_text())
        (metrics / f"{name}.json").write_text(json.dumps({**m, **stop}))
    curves = section(render_run_report(root), "curves")
    assert ('<tr><td>cnn1d</td><td class="n">30</td><td>epoch_cap_still_falling</td>'
            "<td>epoch cap reached with validation loss still falling</td></tr>") in curves
    assert ('<tr><td>keras_mlp</td><td class="n">17</td><td>early_stopping</td>'
            "<td>early stopping: validation loss stopped improving</td></tr>") in curves
    assert "<td>svc</td>" not in curves  # trained to convergence: no row
    assert "Stopped at the epoch cap with validation loss still falling: cnn1d." in curves


def test_metrics_of_models_no_longer_in_params_are_left_out(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    for folder in ("models", "loso", "cv"):  # a previous run's files for a model since removed from params.yaml
        shutil.copy(root / "metrics" / folder / "logistic.json", root / "metrics" / folder / "cnn2d.json")
    page = render_run_report(root)
    for anchor in ("scores", "cv", "confusion", "curves"):  # the leaderboard is select_best's, from params
        assert "cnn2d" not in section(page, anchor)
    assert "<td>logistic</td>" in section(page, "scores") and "logistic" in section(page, "cv")


def test_missing_inputs_say_not_run(tmp_path):
    page = render_run_report(tmp_path)
    assert "not run: data/interim/manifest.parquet is absent" in section(page, "data")
    assert "not run: metrics/best.json is absent" in section(page, "best")
    assert "not run: reports/leaderboard.md is absent" in section(page, "leaderboard")


def test_write_and_main(run_root, tmp_path, capsys):
    out = write_run_report(run_root, tmp_path / "a" / "index.html")
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    main(["--root", str(run_root), "--out", str(tmp_path / "b.html")])
    assert "wrote" in capsys.readouterr().out and (tmp_path / "b.html").stat().st_size == out.stat().st_size
