"""Speaker-grouped 5-fold CV of the default model over every shared corpus, with published anchors beside it.

    python bench/cv_shared.py [--corpora DIR] [--work DIR] [--params FILE] [--model logistic] [--k 5]
                              [--out bench/results/cv_shared.md] [--cross-corpus]

Ingests every corpus found under --corpora (ser.corpora.detect), extracts the params.yaml features
(pooled + eGeMAPS) for every clip without augmented copies (each speaker is a training speaker in
some fold, so copies for only the holdout's train split would favour those speakers), caches them
under --work, runs ser.cv.cross_validate and writes --out (Markdown) and WORK/cv/MODEL.json. With
--cross-corpus it also writes the train-on-one/test-on-another matrix and leave-one-corpus-out.
Features take several minutes on one core the first time; the fits take about a minute.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser.corpora import detect  # noqa: E402
from ser.cv import cross_validate, plot_cv, write_cv  # noqa: E402
from ser.feature_table import FeatureSettings, plan_chunks, run_chunk  # noqa: E402
from ser.ingest import ingest_corpus  # noqa: E402
from ser.io import write_text  # noqa: E402
from ser.split import build_manifest  # noqa: E402

# Published speaker-independent results on the FULL corpora, without pretrained models.
ANCHORS = {
    "cremad": ("0.61", "ERTK, IS13 features, online speaker normalisation"),
    "tess": ("0.47", "ERTK, IS13 online normalisation, train on one talker, test on the other"),
    "ravdess": ("0.62 ± 0.01", "ResLSTM-SA, 5-fold by speaker"),
    "emodb": ("0.77", "LOSO, ComParE + speaker z-score + SVC"),
}


def features(corpora: Path, work: Path, params: dict) -> Path:
    out = work / "features"
    if (work / "features.done").exists():
        return out
    frames, roots = [], {}
    for name, root in detect(corpora):
        result = ingest_corpus(root, name, params["labels"][name], name=name, workers=1)
        print(f"{name}: {len(result.manifest)} clips, {len(result.quarantine)} quarantined", flush=True)
        frames.append(result.manifest)
        roots[name] = root
    manifest, dupes = build_manifest(frames, protocol="speaker", ratios=params["split"]["ratios"], seed=params["seed"])
    manifest = manifest.assign(split="test")  # no augmented copies: see the module docstring
    manifest.to_parquet(work / "manifest.parquet")
    settings = FeatureSettings.from_params(params)
    chunks = plan_chunks(manifest, settings, 100)
    start = time.perf_counter()
    for i, chunk in enumerate(chunks, 1):
        run_chunk(chunk, manifest, roots, settings, out)
        print(f"features {i}/{len(chunks)} ({time.perf_counter() - start:.0f} s)", flush=True)
    (work / "features.done").write_text("ok\n")
    return out


def ci(entry: dict) -> str:
    low, high = entry["ci"]
    return f"{entry['uar']:.3f} [{low:.3f}, {high:.3f}]"


def markdown(report: dict, manifest: pd.DataFrame, seconds: float, extra: str = "") -> str:
    lines = [
        "# Speaker-grouped cross-validation on the shared corpora",
        "",
        f"Model `{report['model']}` ({report['kind']}, {report['input']} features as in params.yaml: pooled "
        f"spectral statistics + eGeMAPS, speaker normalisation), {report['protocol']} over "
        f"{report['n_speakers']} speakers and {report['n']} clips, folds balanced by corpus and gender; every "
        f"speaker is tested once by a model that never heard it. Intervals: 95% bootstrap over SPEAKERS "
        f"({report['bootstrap']['draws']} draws, resampled within each corpus). Run time {seconds:.0f} s "
        "(fits and scoring, features cached).",
        "",
        "The shared subsets are much smaller than the full corpora (a few speakers each, CREMA-D 60 of 91 "
        "actors), so the anchors are context, not a like-for-like comparison; a corpus with one speaker has "
        "a zero-width interval that says nothing about other speakers. TESS and ESD have one speaker each here, so "
        "their fold trains on the other corpora only: for them this is a cross-corpus score. EmoDB's boredom "
        "clips are left out (labels.emodb.boredom: null).",
        "",
        "| corpus | speakers | clips | UAR [95% CI] | published anchor (full corpus) |",
        "|---|---:|---:|---|---|",
    ]
    for corpus, entry in report["uar_by_corpus"].items():
        anchor = ANCHORS.get(corpus)
        lines.append(f"| {corpus} | {entry['speakers']} | {entry['n']} | {ci(entry)} | "
                     f"{f'{anchor[0]}: {anchor[1]}' if anchor else '–'} |")
    lines += [
        f"| **mean of per-corpus UARs** | {report['n_speakers']} | {report['n']} | **{ci(report['uar_corpus_mean'])}** | |",
        f"| all clips pooled | | | {ci(report['uar_pooled'])} | |",
        "",
        "## By gender",
        "",
        "| gender | speakers | clips | UAR [95% CI] |",
        "|---|---:|---:|---|",
    ]
    for gender, entry in report["by_gender"].items():
        lines.append(f"| {gender} | {entry['speakers']} | {entry['n']} | {ci(entry)} |")
    gap = report["gender_gap"]
    if gap["female_minus_male"] is not None:
        lines += ["", f"Female minus male UAR, within the corpora that have both ({', '.join(gap['corpora'])}), "
                      f"averaged over them: {gap['female_minus_male']:+.3f} [{gap['ci'][0]:+.3f}, {gap['ci'][1]:+.3f}]."]
    lines += ["", "## Per fold", "", "| fold | speakers | clips | mean per-corpus UAR |", "|---:|---:|---:|---:|"]
    for f in report["per_fold"]:
        lines.append(f"| {f['fold']} | {len(f['speakers'])} | {f['n']} | {f['uar_corpus_mean']:.3f} |")
    if extra:
        lines += ["", extra]
    lines += ["", "Reproduce: `python bench/cv_shared.py` (features cached under --work; "
              "the JSON report is written to WORK/cv/MODEL.json)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ser_cv_shared"))
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--model", default="logistic")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cv_shared.md")
    ap.add_argument("--cross-corpus", action="store_true")
    args = ap.parse_args()
    if not args.corpora.is_dir():
        sys.exit(f"no corpora at {args.corpora}: pass --corpora")
    params = copy.deepcopy(yaml.safe_load(args.params.read_text()))
    params["augment"]["copies"] = 0
    args.work.mkdir(parents=True, exist_ok=True)
    feats = features(args.corpora, args.work, params)
    manifest = pd.read_parquet(args.work / "manifest.parquet")
    spec = params["models"][args.model]
    start = time.perf_counter()
    report, pred = cross_validate(args.model, spec, params, feats, manifest, k=args.k, n_boot=args.draws,
                                  on_fold=lambda i, n, u: print(f"fold {i}/{n}: UAR {u:.3f}", flush=True))
    seconds = time.perf_counter() - start
    write_cv(report, args.work / "cv" / f"{args.model}.json", pred)
    plot_cv(report, args.out.with_name(f"{args.out.stem}_uar.png"))
    extra = ""
    if args.cross_corpus:
        from ser.cross_corpus import (cross_corpus_matrix, leave_one_corpus_out, loco_markdown, matrix_markdown,
                                      plot_matrix)

        long = cross_corpus_matrix(spec, params, feats, manifest)
        long.to_csv(args.work / "cv" / "cross_corpus.csv", index=False)
        loco = leave_one_corpus_out(spec, params, feats, manifest)
        diagonal = {c: v["uar"] for c, v in report["uar_by_corpus"].items() if v["speakers"] > 1}
        plot_matrix(long, args.out.with_name(f"{args.out.stem}_cross_corpus.png"), diagonal=diagonal)
        extra = ("## Cross-corpus: train on one corpus (rows), test on another (columns)\n\n"
                 "Diagonal: the corpus's UAR in the pooled cross-validation above (trained on all corpora's other "
                 "speakers), for corpora with more than one speaker.\n\n"
                 + matrix_markdown(long, diagonal) + "\n## Leave one corpus out\n\n" + loco_markdown(loco))
    write_text(markdown(report, manifest, seconds, extra), args.out)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
