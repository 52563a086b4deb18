"""Data contracts (ser.validate): valid tables pass; each kind of corruption fails by name, with its row.

Every validate_* call is one Great Expectations run (~0.5 s after GX's one-off import), so the
valid reports are module-scoped and each corruption test makes exactly one run.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser import EMOTIONS
from ser.validate import (
    ExpectationResult,
    ValidationFailed,
    ValidationReport,
    _settings,
    validate_features,
    validate_manifest,
    write_report,
)

CFG = {
    "validate": {
        "duration_s": {"min": 0.1, "max": 60},
        "sample_rate": {"min": 8000, "max": 96000},
        "min_rows_per_class": 1,
        "require_all_classes": True,
    }
}
N_FEATURES = 6


def make_manifest() -> pd.DataFrame:
    """3 speakers per split, each reading all seven emotions once: 63 rows."""
    rows = []
    for split in ("train", "val", "test"):
        for k in range(3):
            spk = f"{split}{k}"
            for e in EMOTIONS:
                rel = f"{spk}/{e}.wav"
                rows.append({
                    "utt_id": f"demo/{rel}", "path": f"data/raw/demo/{rel}", "corpus": "demo",
                    "speaker": f"demo:{spk}", "gender": ("female", "male")[k % 2], "language": "en",
                    "raw_label": e, "emotion": e, "duration_s": 1.5, "sample_rate": 16000, "channels": 1,
                    "sha1": hashlib.sha1(rel.encode()).hexdigest(), "split": split, "fold": k,
                })
    return pd.DataFrame(rows)


def make_features(manifest: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Originals of every split plus one augmented copy of each train row."""
    base = manifest[["utt_id", "corpus", "speaker", "emotion", "split"]].copy()
    base["augmented"] = False
    base["copy"] = 0
    base["source"] = base["utt_id"]
    aug = base[base["split"] == "train"].copy()
    aug["utt_id"] = aug["source"] + "#aug1"
    aug["augmented"] = True
    aug["copy"] = 1
    table = pd.concat([base, aug], ignore_index=True)
    cols = [f"mfcc_{i:02d}_mean" for i in range(1, N_FEATURES + 1)]
    values = np.random.default_rng(0).normal(size=(len(table), N_FEATURES))
    return pd.concat([table, pd.DataFrame(values, columns=cols)], axis=1), cols


def failed(report: ValidationReport) -> set[tuple[str, str | None]]:
    return {(r.name, r.column) for r in report.failures}


def row_of(df: pd.DataFrame, **where) -> int:
    mask = np.ones(len(df), dtype=bool)
    for col, value in where.items():
        mask &= (df[col] == value).to_numpy()
    return int(df.index[mask][0])


@pytest.fixture(scope="module")
def manifest() -> pd.DataFrame:
    return make_manifest()


@pytest.fixture(scope="module")
def features(manifest) -> tuple[pd.DataFrame, list[str]]:
    return make_features(manifest)


@pytest.fixture(scope="module")
def manifest_report(manifest) -> ValidationReport:
    return validate_manifest(manifest, CFG)


@pytest.fixture(scope="module")
def features_report(features) -> ValidationReport:
    table, cols = features
    return validate_features(table, cols, CFG)


# ------------------------------------------------------------------------------------ valid tables


def test_valid_manifest_passes(manifest_report):
    report = manifest_report
    assert report.success, report.to_markdown()
    assert report.table == "manifest" and report.n_rows == 63
    assert report.raise_for_failure() is report
    names = {r.name for r in report.results}
    for name in ("expect_column_to_exist", "expect_column_values_to_be_in_type_list",
                 "expect_column_values_to_not_be_null", "expect_column_values_to_be_unique",
                 "expect_column_values_to_be_in_set", "expect_column_values_to_match_regex",
                 "expect_column_values_to_be_between", "expect_column_distinct_values_to_contain_set"):
        assert name in names
    assert not any(r.error for r in report.results)
    md = report.to_markdown()
    assert md.startswith("## manifest: ✓ PASSED") and "✗" not in md


def test_valid_features_passes(features_report):
    report = features_report
    assert report.success, report.to_markdown()
    assert not any(r.error for r in report.results)
    # per-feature expectations: exist, type, not null, finite, for each of the 6 columns
    per_feature = [r for r in report.results if r.group == "feature columns"]
    assert len(per_feature) == 4 * N_FEATURES
    assert f"| {N_FEATURES} feature columns |" in report.to_markdown()


def test_class_balance_is_a_warning_table(manifest_report, features_report):
    bal = manifest_report.balance
    assert list(bal.index.names) == ["corpus", "split"]
    assert list(bal.columns) == [*EMOTIONS, "total"]
    assert (bal[list(EMOTIONS)] == 3).all().all() and (bal["total"] == 21).all()
    assert manifest_report.warnings == []
    fbal = features_report.balance
    assert fbal.loc[("demo", "train"), "total"] == 42 and fbal.loc[("demo", "train"), "augmented"] == 21
    assert "Class balance (WARNING only, never failing)" in manifest_report.to_markdown()


# ------------------------------------------------------------------------------------ manifest corruptions


def test_unknown_emotion_fails_naming_the_row(manifest):
    bad = manifest.copy()
    i = row_of(bad, utt_id="demo/train1/happy.wav")
    bad.loc[i, "emotion"] = "bored"
    report = validate_manifest(bad, CFG)
    assert not report.success
    assert ("expect_column_values_to_be_in_set", "emotion") in failed(report)
    md = report.to_markdown()
    assert "| demo/train1/happy.wav | bored |" in md
    with pytest.raises(ValidationFailed) as err:
        report.raise_for_failure()
    msg = str(err.value)
    assert "expect_column_values_to_be_in_set(emotion)" in msg and "demo/train1/happy.wav" in msg
    assert err.value.report is report


def test_leaked_speaker_fails_naming_the_row(manifest):
    bad = manifest.copy()
    i = row_of(bad, utt_id="demo/test0/sad.wav")
    bad.loc[i, "speaker"] = "demo:train0"  # a train speaker also read a test utterance
    report = validate_manifest(bad, CFG)
    assert failed(report) == {("expect_column_values_to_be_between", "speaker_splits")}
    leak = report.failures[0]
    assert leak.unexpected_count == 8  # train0's 7 utterances + the leaked one
    md = report.to_markdown()
    assert "no speaker in two splits" in md
    assert "demo/test0/sad.wav" in md and "test+train" in md


def test_missing_column_fails_and_the_rest_still_runs(manifest):
    report = validate_manifest(manifest.drop(columns=["sha1"]), CFG)
    assert failed(report) == {("expect_column_to_exist", "sha1")}
    assert not any(r.error for r in report.results)  # no expectation crashed on the absent column
    assert "#### ✗ expect_column_to_exist — `sha1`" in report.to_markdown()
    assert "column is missing" in str(ValidationFailed(report))


def test_class_missing_from_test_fails(manifest):
    bad = manifest[~((manifest["split"] == "test") & (manifest["emotion"] == "fear"))]
    report = validate_manifest(bad, CFG)
    assert failed(report) == {("expect_column_distinct_values_to_contain_set", "emotion")}
    (res,) = report.failures
    assert "test" in res.check and res.observed == "missing: fear"
    assert "missing: fear" in report.to_markdown()
    assert report.warnings == ["demo/test: no rows for fear"]


def test_small_corpus_without_all_classes(manifest):
    """require_all_classes false: an absent class is fine, min_rows_per_class still applies."""
    small = manifest[manifest["emotion"] != "surprise"]
    cfg = {"require_all_classes": False, "min_rows_per_class": 4}  # 3 speakers -> 3 rows per class
    report = validate_manifest(small, cfg)
    assert failed(report) == {("expect_column_values_to_be_between", "class_rows_in_split")}
    assert report.failures[0].unexpected_count == 2 * 6 * 3  # train and test rows, 6 classes
    assert "demo/test0/angry.wav" in report.to_markdown() or "demo/train0/angry.wav" in report.to_markdown()


# ------------------------------------------------------------------------------------ features corruptions


def test_nan_feature_fails_naming_the_row(features):
    table, cols = features
    bad = table.copy()
    bad.loc[row_of(bad, utt_id="demo/val2/fear.wav"), cols[2]] = np.nan
    report = validate_features(bad, cols, CFG)
    assert failed(report) == {("expect_column_values_to_not_be_null", cols[2])}
    assert f"| demo/val2/fear.wav | nan |" in report.to_markdown()


def test_inf_feature_fails_naming_the_rows(features):
    table, cols = features
    bad = table.copy()
    bad.loc[row_of(bad, utt_id="demo/test1/angry.wav"), cols[0]] = np.inf
    bad.loc[row_of(bad, utt_id="demo/train2/sad.wav#aug1"), cols[0]] = -np.inf
    report = validate_features(bad, cols, CFG)
    assert failed(report) == {("expect_column_values_to_be_between", cols[0])}
    md = report.to_markdown()
    assert "| demo/test1/angry.wav | inf |" in md and "| demo/train2/sad.wav#aug1 | -inf |" in md


def test_augmented_row_in_test_fails(features):
    table, cols = features
    bad = table.copy()
    i = row_of(bad, utt_id="demo/test2/disgust.wav")
    bad.loc[i, ["augmented", "copy"]] = [True, 1]
    report = validate_features(bad, cols, CFG)
    assert ("expect_column_values_to_be_in_set", "split") in failed(report)
    (res,) = [r for r in report.failures if r.check == "no augmented row outside train"]
    assert res.rows == [{"utt_id": "demo/test2/disgust.wav", "split": "test",
                         "source": "demo/test2/disgust.wav", "copy": 1}]
    assert "demo/test2/disgust.wav" in report.to_markdown()


@pytest.mark.parametrize("change", ["one fewer", "one more"])
def test_wrong_feature_count_fails(features, change):
    table, cols = features
    told = cols[:-1] if change == "one fewer" else [*cols, "mfcc_99_mean"]
    report = validate_features(table, told, CFG)
    assert ("expect_table_columns_to_match_set", None) in failed(report)
    md = report.to_markdown()
    if change == "one fewer":
        assert f"unexpected columns: {cols[-1]}" in md
    else:
        assert "missing columns: mfcc_99_mean" in md
        assert ("expect_column_to_exist", "mfcc_99_mean") in failed(report)


# ------------------------------------------------------------------------------------ no GX run


def test_settings_defaults_and_bad_values():
    s = _settings(None)
    assert s["duration_s"] == {"min": 0.1, "max": 60.0} and s["require_all_classes"] is True
    assert _settings(CFG)["sample_rate"] == {"min": 8000, "max": 96000}
    assert _settings({"duration_s": {"max": 30}})["duration_s"] == {"min": 0.1, "max": 30}
    with pytest.raises(ValueError, match="min_rows_per_class"):
        _settings({"min_rows_per_class": -1})
    with pytest.raises(ValueError, match="duration_s"):
        _settings({"duration_s": {"min": 5, "max": 1}})
    with pytest.raises(ValueError, match="unknown keys"):
        _settings({"min_rows": 1})
    with pytest.raises(ValueError, match="feature columns"):
        validate_features(pd.DataFrame(), [], CFG)


def _fake_report(table: str, ok: bool) -> ValidationReport:
    results = [ExpectationResult("expect_column_to_exist", "utt_id", True, "required column exists")]
    if not ok:
        results.append(ExpectationResult(
            "expect_column_values_to_be_in_set", "emotion", False, "emotion is one of the seven",
            unexpected_count=7, element_count=9, rows=[{"utt_id": f"c/{i}|x.wav", "emotion": "bored"} for i in range(5)]))
    return ValidationReport(success=ok, table=table, results=results, n_rows=9)


def test_markdown_and_exception_text():
    report = _fake_report("manifest", ok=False)
    md = report.to_markdown()
    assert "## manifest: ✗ FAILED" in md and "1 of 2 expectations passed, 1 failed; 9 rows." in md
    assert "| ✗ | expect_column_values_to_be_in_set | emotion | emotion is one of the seven | 7 of 9 rows unexpected |" in md
    assert "Offending rows (first 5):" in md and "| c/0\\|x.wav | bored |" in md  # pipes escaped
    msg = str(ValidationFailed(report))
    assert msg.splitlines()[0] == "manifest validation failed: 1 of 2 expectations failed (9 rows)"
    assert "utt_id=c/0|x.wav, emotion=bored" in msg
    assert report.to_dict()["failed"] == 1


def test_write_report_is_one_atomic_file(tmp_path: Path):
    out = tmp_path / "reports" / "validate.md"
    write_report([_fake_report("manifest", ok=True), _fake_report("features", ok=False)], out)
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Data validation\n\n✗ failed: features")
    assert "## manifest: ✓ PASSED" in text and "## features: ✗ FAILED" in text
    assert sorted(p.name for p in out.parent.iterdir()) == ["validate.md"]  # no temp file left


def test_importing_ser_validate_does_not_import_gx():
    code = "import sys, ser.validate; assert 'great_expectations' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
