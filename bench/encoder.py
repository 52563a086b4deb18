"""Does a pretrained speech encoder beat the hand-made features on unseen speakers of all seven corpora?

    python bench/encoder.py extract  [--corpora-root DIR] [--cache DIR] [--variants clip:int8,5:int8,...]
    python bench/encoder.py evaluate [--cache DIR] [--out FILE] [--svc]

`extract` ingests the seven shared corpora with the project's parsers and label maps (params.yaml),
loads every clip once with ser.audio.load_audio (16 kHz, params.yaml `audio`), and caches per feature
set one Parquet file under --cache (default /tmp/ser_bench_encoder), reused by later runs: pooled
(ser.features, params.yaml `features` without fusion), eGeMAPSv02 (ser.egemaps) and the Whisper
encoder (ser.encoder) for each pad_s:compute_type variant. Each file records its extraction time.

`evaluate`: speaker-grouped 5-fold CV (StratifiedGroupKFold by speaker, seeded) over all clips of all
corpora; score = mean of the per-corpus UARs (each corpus counts once), 95 % CI from 1,000 seeded
bootstrap draws resampling speakers within each corpus. Logistic regression's C is chosen inside
each outer fold by an inner speaker-grouped 3-fold CV on the training speakers only, scored the same
way. Per-speaker z-scoring (ser.normalize.GroupNormalizer) uses each test speaker's own unlabelled
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
    jobs += [(f"encoder_{v.replace(':', '_')}", v) for v in args.variants.split(",") if v]
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
            from ser.encoder import EncoderConfig, encoder_names, extract_encoder

            pad, ctype = variant.split(":")
            cfg = EncoderConfig(pad_s=pad, compute_type=ctype, threads=1, batch_size=args.batch_size)
            parts = []
            for i in range(0, len(audios), 200):
                parts.append(extract_encoder(audios[i:i + 200], 16000, cfg))
                log(f"  {min(i + 200, len(audios))}/{len(audios)} ({time.perf_counter() - start:.0f} s)")
            values, names = np.concatenate(parts), encoder_names(cfg)
        seconds = time.perf_counter() - start
        _save(path, ids, names, values, seconds)
        log(f"{name}: {values.shape[1]} columns, {seconds:.0f} s = {1000 * seconds / len(audios):.1f} ms/clip")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--corpora-root", default=DEFAULT_CORPORA)
    e.add_argument("--cache", default=DEFAULT_CACHE)
    e.add_argument("--variants", default=DEFAULT_VARIANTS)
    e.add_argument("--batch-size", type=int, default=8)
    v = sub.add_parser("evaluate")
    v.add_argument("--cache", default=DEFAULT_CACHE)
    v.add_argument("--out", default=str(ROOT / "bench" / "results" / "encoder_shared.md"))
    v.add_argument("--svc", action="store_true", help="add SVC rows (slower)")
    args = p.parse_args(argv)
    if args.cmd == "extract":
        if not Path(args.corpora_root).is_dir():
            print(f"corpora not found at {args.corpora_root}", file=sys.stderr)
            return 2
        extract(args)
    else:
        evaluate(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
