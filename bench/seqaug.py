"""Do SpecAugment, mixup or an attention-pooling head give the log-mel sequence models a fair chance?

    python bench/seqaug.py screen [--features DIR] [--manifest FILE] [--configs a,b] [--epochs N]
    python bench/seqaug.py cv --config NAME [--cache DIR] [--features DIR] [--manifest FILE] [--epochs N]

`screen`: each configuration (CONFIGS) trained on the manifest's TRAIN speakers (with their augmented
copies), early-stopped and scored on its VALIDATION speakers: mean of per-corpus UARs with a speaker-
bootstrap 95 % CI. Choices are made here, never on test speakers. Results accumulate in
WORK/screen.jsonl and bench/results/seqaug_shared.md.

`cv`: the chosen configuration under the protocol of bench/results/encoder_shared.md (bench/encoder.py:
the same 1,644 clips, the same StratifiedGroupKFold speaker folds, seed 42, per-corpus UAR, 1,000-draw
speaker bootstrap, speaker z-scoring with min 5 clips), appended to that table with the baseline row
(pooled + eGeMAPS, speaker z, logistic) rerun beside it. A Keras model early-stops on the next fold's
speakers, which are then left out of its training (as ser.cv does); training speakers' augmented log-mel
copies (params.yaml `augment`, train split of the manifest) are used, test and validation speakers' never.

Inputs: a features folder with the log-mel table of the seven corpora (`features@NAME` stages) and its
manifest; `cv` also the bench/encoder.py cache (its manifest, pooled and eGeMAPS tables).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CNN2D = {"kind": "cnn2d", "filters": [16, 32, 64], "kernel_size": 3, "pool": 2, "input_pool": [2, 1], "dropout": 0.0,
         "dense_units": 64}  # params.yaml's zoo entry
MASKS = {"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 30}
CONFIGS: dict[str, dict[str, Any]] = {
    "cnn2d": CNN2D,
    "cnn2d+specaug": {**CNN2D, "spec_augment": MASKS},
    "cnn2d+mixup": {**CNN2D, "mixup_alpha": 0.2},
    "cnn2d+specaug+mixup": {**CNN2D, "spec_augment": MASKS, "mixup_alpha": 0.2},
    "cnn_attention": {"kind": "cnn_attention"},
    "cnn_attention+specaug": {"kind": "cnn_attention", "spec_augment": MASKS},
    "cnn_attention+specaug+mixup": {"kind": "cnn_attention", "spec_augment": MASKS, "mixup_alpha": 0.2},
}
OUT = ROOT / "bench" / "results" / "seqaug_shared.md"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def settings() -> Any:
    import yaml

    from ser.params import Settings

    return Settings.coerce(yaml.safe_load((ROOT / "params.yaml").read_text()))


def load_logmel(features: Path, manifest: pd.DataFrame, params: Any) -> Any:
    from ser.feature_table import FeatureSettings
    from ser.train import load_table

    return load_table(features, "logmel", FeatureSettings.from_params(params).features, manifest)


def training(params: Any, epochs: int) -> dict[str, Any]:
    return {**params.train.keras.model_dump(), "epochs": int(epochs)}


def normalizer(min_group_size: int) -> Any:
    from ser.speaker_norm import GroupNormalizer

    return GroupNormalizer(mode="speaker", min_group_size=min_group_size)


def fit_predict(spec: dict[str, Any], params: Any, epochs: int, train: Any, val: Any, test: Any,
                min_group_size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """(test probabilities, {train_s, epochs, stop}) of one fit on `train`, early-stopped on `val`."""
    from ser.train import fit_and_score, scale

    model, scaler, _, history, timings = fit_and_score(spec, training(params, epochs), params.seed, train, val, {},
                                                       norm=normalizer(min_group_size))
    proba = model.predict_proba(scale(scaler, test))
    return proba, {"train_s": timings["train_s"], "epochs": len(history.get("loss", [])),
                   "stop": model.stop_reason}


# --------------------------------------------------------------------------------------------------
# screen: train split -> validation speakers

def screen(args: argparse.Namespace) -> None:
    from ser import EMOTIONS
    from ser.stats import corpus_scores
    from ser.train import holdout

    params = settings()
    if args.seed is not None:  # another draw of initial weights, shuffling, masks and mixing: the screen's noise
        params = params.model_copy(update={"seed": args.seed})
    manifest = pd.read_parquet(args.manifest)
    table = load_logmel(Path(args.features), manifest, params)
    train, val, _ = holdout(table)
    log(f"train {len(train)} rows ({int(train.meta['augmented'].sum())} augmented), val {len(val)} clips, "
        f"{val.meta['speaker'].nunique()} speakers")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        spec = CONFIGS[name]
        log(f"{name}: fitting (epochs <= {args.epochs}; load {os.getloadavg()[0]:.1f})")
        proba, info = fit_predict(spec, params, args.epochs, train, val, val, params.normalize.min_group_size)
        pred = val.meta[["corpus", "speaker"]].assign(actual=[EMOTIONS[i] for i in val.y],
                                                      predicted=[EMOTIONS[i] for i in proba.argmax(axis=1)])
        scores = corpus_scores(pred, n_boot=1000, seed=params.seed)
        row = {"config": name, "spec": spec, "max_epochs": args.epochs, "seed": params.seed, **info,
               "mean": scores["uar_corpus_mean"]["uar"], "ci": scores["uar_corpus_mean"]["ci"],
               "per_corpus": {c: v["uar"] for c, v in scores["uar_by_corpus"].items()},
               "load": os.getloadavg(), "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        with open(work / "screen.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        log(f"{name}: val mean per-corpus UAR {row['mean']:.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}] "
            f"({info['epochs']} epochs, {info['stop']}, {info['train_s']:.0f} s)")
        write_screen(work / "screen.jsonl", Path(args.out), len(train), train, val)


def write_screen(rows_path: Path, out: Path, n_train: int, train: Any, val: Any) -> None:
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    corpora = sorted({c for r in rows for c in r["per_corpus"]})
    base = {r.get("seed", 42): r for r in reversed(rows) if r["config"] == "cnn2d"}
    spk = val.meta.groupby("corpus")["speaker"].nunique()
    lines = [
        "# Log-mel sequence models with SpecAugment, mixup and attention pooling: validation-speaker screen",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs (`uptime`: {uptime()}); each row gives the 1/5/15-min load "
        "average when its fit ended.",
        "",
        f"Protocol: `python bench/seqaug.py screen`. Train on the manifest's train speakers ({n_train} rows: "
        f"{int((~train.meta['augmented']).sum())} clips of {train.meta['speaker'].nunique()} speakers plus their "
        "augmented copies from params.yaml `augment`), early stopping (patience 6) and scoring on the validation "
        f"speakers ({len(val)} clips: " + ", ".join(f"{c} {n} spk" for c, n in spk.items()) + "). Score = mean of "
        "the per-corpus UARs (corpora without validation speakers are absent), 95 % CI from 1,000 speaker-bootstrap "
        "draws. Log-mel (300 frames x 64 mels), per-speaker z-scoring (params.yaml `normalize`), balanced sample "
        "weights, Adam 1e-3, batch 32. SpecAugment: 2 frequency masks of <= 8 mels and 2 time masks of <= 30 frames; "
        "mixup alpha 0.2 (keras.layers.MixUp).",
        "",
        "| configuration | seed | " + " | ".join(corpora) + " | val mean UAR | 95 % CI | Δ vs cnn2d (same seed) | "
        "epochs (cap) | stop | fit s | load 1/5/15 |",
        "|" + "---|" * (len(corpora) + 9),
    ]
    for r in rows:
        b = base.get(r.get("seed", 42))
        delta = f"{100 * (r['mean'] - b['mean']):+.1f}" if b else "–"
        lines.append(f"| {r['config']} | {r.get('seed', 42)} | " + " | ".join(f"{r['per_corpus'].get(c, float('nan')):.3f}" for c in corpora)
                     + f" | **{r['mean']:.3f}** | {r['ci'][0]:.3f}–{r['ci'][1]:.3f} | {delta} | {r['epochs']} "
                     f"({r['max_epochs']}) | {r['stop']} | {r['train_s']:.0f} | "
                     + "/".join(f"{v:.1f}" for v in r["load"]) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    notes = out.with_suffix(".notes.md")
    if notes.is_file():  # the reading, written by hand after the run
        text += "\n" + notes.read_text()
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(out)


# --------------------------------------------------------------------------------------------------
# cv: the encoder_shared.md protocol

def cv(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import encoder as enc  # bench/encoder.py: its data, folds, scores and the baseline row

    from ser.features import limit_blas_threads

    params = settings()
    data = enc.Data(Path(args.cache))
    manifest = pd.read_parquet(args.manifest)
    table = load_logmel(Path(args.features), manifest, params)
    meta = table.meta
    # row of each bench clip in the log-mel table; augmented rows follow their source clip's speaker
    orig = meta[~meta["augmented"]].reset_index().set_index("utt_id")["index"]
    missing = set(data.manifest["utt_id"]) - set(orig.index)
    if missing:
        raise SystemExit(f"{len(missing)} bench clips have no log-mel row, e.g. {sorted(missing)[:3]}")
    order = orig.loc[data.manifest["utt_id"]].to_numpy()
    if not np.array_equal(np.asarray(table.y)[order], data.y):
        raise SystemExit("log-mel labels differ from the bench manifest's")
    spec = CONFIGS[args.config]
    folds = enc._folds(data.y, data.speaker, enc.OUTER_FOLDS, enc.SEED)
    fold_of = np.empty(len(data.y), int)
    for f, (_, te) in enumerate(folds):
        fold_of[te] = f
    speaker_fold = dict(zip(data.speaker, fold_of))
    row_fold = meta["speaker"].map(speaker_fold).to_numpy()
    proba = np.zeros((len(data.y), len(data.classes)))
    per_fold, start = [], time.perf_counter()
    for f in range(len(folds)):
        v = (f + 1) % len(folds)
        train = table.subset((row_fold != f) & (row_fold != v))
        val = table.subset((row_fold == v) & ~meta["augmented"].to_numpy())
        te_rows = np.flatnonzero(fold_of == f)
        test = table.subset(np.isin(np.arange(len(meta)), order[te_rows]))
        # table.subset keeps table order: map back to the bench rows
        pos = pd.Series(np.arange(len(test)), index=test.meta["utt_id"]).loc[data.manifest["utt_id"].to_numpy()[te_rows]]
        log(f"fold {f + 1}/{len(folds)}: train {len(train)} rows, val {len(val)}, test {len(te_rows)} "
            f"(load {os.getloadavg()[0]:.1f})")
        p, info = fit_predict(spec, params, args.epochs, train, val, test, 5)
        proba[te_rows] = p[pos.to_numpy()]
        per_fold.append(info)
        log(f"fold {f + 1}: {info['epochs']} epochs ({info['stop']}), {info['train_s']:.0f} s")
    seconds = time.perf_counter() - start
    y, pred = data.y, proba.argmax(axis=1)
    masked = enc.predict_masked(proba, data.corpus, data.allowed)
    row = {"sets": ("logmel",), "mode": "speaker", "kind": args.config, "seconds": seconds,
           "per_corpus": enc.per_corpus_uar(y, pred, data.corpus), "mean": enc.mean_uar(y, pred, data.corpus),
           "ci": enc.bootstrap_ci(y, pred, data.speaker, data.corpus, len(data.classes)),
           "masked": enc.mean_uar(y, masked, data.corpus),
           "masked_ci": enc.bootstrap_ci(y, masked, data.speaker, data.corpus, len(data.classes)),
           "per_fold": per_fold, "ms": logmel_ms(data, args)}
    Path(args.work).mkdir(parents=True, exist_ok=True)
    (Path(args.work) / f"cv_{args.config}.json").write_text(json.dumps(row, indent=1, default=list))
    log(f"{args.config}: {row['mean']:.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}] ({seconds:.0f} s); baseline next")
    limit_blas_threads(1)
    base = enc.run_row(data, ("pooled", "egemaps"), "speaker", "logistic")
    append_cv(Path(args.out), data, base, row, args.epochs)


def logmel_ms(data: Any, args: argparse.Namespace, n: int = 100) -> float:
    """Single-thread log-mel extraction time per clip (audio loading excluded) over the first `n` bench clips."""
    import yaml

    from ser.audio import load_audio
    from ser.features import FeatureConfig, extract_logmel, limit_blas_threads

    limit_blas_threads(1)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = FeatureConfig.from_params({**params["features"], "opensmile": None, "encoder": None})
    rows = data.manifest.iloc[np.linspace(0, len(data.manifest) - 1, n).astype(int)]
    audios = [load_audio(Path(args.corpora_root) / r.corpus / r.path, 16000, normalize="peak")
              for r in rows.itertuples(index=False)]
    extract_logmel(audios[0], cfg)  # librosa's first call builds filters and caches: not per-clip cost
    start = time.perf_counter()
    for a in audios:
        extract_logmel(a, cfg)
    return 1000 * (time.perf_counter() - start) / len(audios)


def append_cv(out: Path, data: Any, base: dict[str, Any], row: dict[str, Any], epochs: int) -> None:
    corpora = data.corpora
    label = {"baseline": "pooled + eGeMAPS, speaker z, logistic", "row": f"log-mel {row['kind']}, speaker z, Keras"}
    lines = [
        "",
        "## Sequence-model row (log-mel, Keras; same protocol, folds and data; the baseline rerun beside it)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()} with {os.cpu_count()} cores "
        f"shared with other jobs (`uptime` at the end: {uptime()}).",
        "",
        f"Protocol: `python bench/seqaug.py cv --config {row['kind']}` (configuration chosen on validation speakers by "
        "`bench/seqaug.py screen`, bench/results/seqaug_shared.md). The outer folds are bench/encoder.py's; the Keras "
        f"model trains on the other folds minus the next fold, whose speakers only early-stop it (epochs <= {epochs}, "
        "patience 6), with the training speakers' augmented copies where the manifest has them. `C per fold` holds "
        "the epochs each fold ran; extract ms/clip = single-thread log-mel time (100 clips).",
        "",
        "| configuration | " + " | ".join(corpora) + " | mean UAR | 95 % CI | masked mean | masked CI | Δ vs baseline | "
        "C per fold | extract ms/clip | fit s |",
        "|" + "---|" * (len(corpora) + 9),
    ]
    for key, r in (("baseline", base), ("row", row)):
        per = "/".join(f"{c:g}" for c in r["C"]) if key == "baseline" else \
            "/".join(f"{p['epochs']} ep" for p in r["per_fold"])
        ms = data.ms_per_clip(("pooled", "egemaps")) if key == "baseline" else r["ms"]
        lines.append(f"| {label[key]} | " + " | ".join(f"{r['per_corpus'][c]:.3f}" for c in corpora)
                     + f" | **{r['mean']:.3f}** | {r['ci'][0]:.3f}–{r['ci'][1]:.3f} | {r['masked']:.3f} | "
                     f"{r['masked_ci'][0]:.3f}–{r['masked_ci'][1]:.3f} | {100 * (r['mean'] - base['mean']):+.1f} | "
                     f"{per} | {ms:.0f} | {r['seconds']:.0f} |")
    text = out.read_text() if out.is_file() else ""
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("screen", "cv"):
        s = sub.add_parser(name)
        s.add_argument("--features", default=str(ROOT / "data" / "features"))
        s.add_argument("--manifest", default=str(ROOT / "data" / "interim" / "manifest.parquet"))
        s.add_argument("--epochs", type=int, default=30, help="cap on Keras epochs (early stopping decides below it)")
        s.add_argument("--work", default="/tmp/ser_bench_seqaug")
    s = sub.choices["screen"]
    s.add_argument("--configs", default=",".join(CONFIGS))
    s.add_argument("--out", default=str(OUT))
    s.add_argument("--seed", type=int, default=None, help="model seed (default: params.yaml seed)")
    c = sub.choices["cv"]
    c.add_argument("--config", required=True, choices=sorted(CONFIGS))
    c.add_argument("--cache", default="/tmp/ser_bench_encoder")
    c.add_argument("--corpora-root", default="/work/shared/corpora")
    c.add_argument("--out", default=str(ROOT / "bench" / "results" / "encoder_shared.md"))
    args = p.parse_args(argv)
    screen(args) if args.cmd == "screen" else cv(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
