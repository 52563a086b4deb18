"""Prediction speed: warm single-clip latency, batch throughput and the streaming real-time factor.

    python bench/predict.py [--pooled models/zoo/svc] [--sequence models/zoo/cnn1d] [--runs 50] [--batch 64]

For each model artefact (a pooled-feature model and a log-mel sequence model; either may be
skipped with ``--pooled ''`` / ``--sequence ''``):

1. latency: one 3-second speech-like WAV at 44,100 Hz (bench/features.py's synthetic voice), decoded
   and resampled (``ser.audio.load_audio``), its features computed (``ser.predict.raw_features``:
   only the family the model needs) and the scaler + model applied; median and p90 over --runs
   warm runs (after 5 untimed ones). Target: < 50 ms for the pooled model on 2 CPU cores.
2. throughput: --batch different 3-second clips, each loaded and featurised, then ONE model call on
   the stacked batch; clips per second over the whole thing (best of 3 passes; the baseline: 1 pass).
3. streaming: ``ser.stream.StreamPredictor`` (3-s window, 1-s hop) fed from a 30-s file by
   ``file_source`` in 0.1-s blocks, as `ser listen --file` does; real-time factor = processing time /
   audio time (< 1 keeps up with a microphone) and the per-window latency.

Baseline, measured in the same run on the same clip: the seed notebooks' way -- ``librosa.load`` at
its default 22,050 Hz, then separate ``librosa.feature`` calls (mfcc, chroma_stft with tuning
estimation, melspectrogram, spectral_contrast, zcr, rms; each its own STFT), then the same scaler
+ model (on this model's features: the naive vector has another width). The ratio printed is
baseline time / ours.

Folder mode (``--folder DIR [--files 300] [--model models/best]``): `ser predict` on a folder of the first
--files audio files under DIR (symlinked into a temp folder), run as the user runs it -- a fresh
``python -m ser.cli predict FOLDER --out x.csv`` with the default model and the default path (a process pool
of one worker per core) -- timed from start to exit (start-up, model load and pool start included); against,
in the same run on the same files, the baseline above done file by file (``librosa.load`` + separate
librosa features + the model's call, warm, in this process) and, for reference, the same command with
``--workers 1`` (one process, the path before the pool). The three run interleaved --repeats times and the
best of each is compared; both `ser predict` runs must give the same rows.

Trade-off mode (``--variants 10+egemaps,5+egemaps,10,5 [--pooled models/best]``): the warm single-clip
latency of the pooled model's feature path (decode + every feature, as ``Predictor`` runs it) under each
variant of its features -- PAD is ``features.encoder.pad_s``, ``+egemaps`` keeps eGeMAPS, without it
``opensmile: null`` -- beside the model's own configuration; the model call (well under 1 ms) is not
included, as the variants change the model's input width. Their unseen-speaker UARs are the rows of the
same names in bench/results/encoder_shared.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SR_FILE = 44100


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:7.2f} ms"


CPU: dict[int, list[float]] = {}  # id(wall list) -> CPU seconds per run (process time: all threads)


def timed(fn, runs: int, warmup: int = 5) -> list[float]:
    """Wall seconds per run; the matching CPU seconds go to CPU[id(result)]."""
    for _ in range(warmup):
        fn()
    out, cpu = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU[id(out)] = cpu
    return out


def cpu_med(wall: list[float]) -> float:
    return statistics.median(CPU[id(wall)])


def p90(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


def bench_model(model_dir: Path, clips: list[Path], long_file: Path, runs: int) -> dict:
    import numpy as np

    from features import naive_features  # bench/features.py
    from ser.artifact import load_artifact
    from ser.audio import load_audio
    from ser.predict import audio_options, model_proba, raw_features
    from ser.stream import StreamPredictor, file_source

    t0 = time.perf_counter()
    artifact = load_artifact(model_dir)
    load_s = time.perf_counter() - t0
    sr = artifact.features.sample_rate
    opts = audio_options(artifact)

    def ours(path: Path = clips[0]):
        audio = load_audio(path, sr, **opts)
        x = artifact.scaler.transform(raw_features(artifact, audio)[None])
        return model_proba(artifact, x)

    x_ours = artifact.scaler.transform(raw_features(artifact, load_audio(clips[0], sr, **opts))[None])

    def baseline(path: Path = clips[0]):
        naive_features(str(path))  # librosa.load at 22,050 Hz + six separate librosa feature calls
        return artifact.model.predict_proba(x_ours)  # the plain path, as a notebook calls it

    lat = timed(ours, runs)
    model_only = timed(lambda: model_proba(artifact, x_ours), runs)
    base = timed(baseline, max(5, runs // 5), warmup=2)

    def batch():
        feats = np.stack([raw_features(artifact, load_audio(p, sr, **opts)) for p in clips])
        return model_proba(artifact, artifact.scaler.transform(feats))

    batch()
    passes = []
    for _ in range(3):  # best of 3 passes: the least disturbed by other load on the machine
        t0 = time.perf_counter()
        proba = batch()
        passes.append(time.perf_counter() - t0)
    batch_s = min(passes)
    assert proba.shape == (len(clips), 7)
    t0 = time.perf_counter()
    for p in clips:
        baseline(p)
    base_batch_s = time.perf_counter() - t0

    sp = StreamPredictor(artifact, window_s=3.0, hop_s=1.0, smoothing=0.6)
    sp.warmup()
    stats = sp.run(file_source(long_file, 0.1, sr))
    return {"name": artifact.name, "kind": artifact.model.kind, "input": artifact.input, "load_s": load_s,
            "lat": lat, "model_only": model_only, "base": base, "batch_s": batch_s, "base_batch_s": base_batch_s,
            "n": len(clips), "rtf": stats.rtf, "windows": stats.windows, "audio_s": stats.audio_s,
            "win_ms": 1000 * statistics.median(stats.latencies_s)}


def parse_variant(text: str) -> tuple[str, int | str, bool]:
    """"10+egemaps" -> (label, pad_s 10, eGeMAPS kept); "clip" -> (label, "clip", no eGeMAPS)."""
    pad, _, extra = text.strip().partition("+")
    if extra not in ("", "egemaps"):
        raise ValueError(f"variant {text!r}: expected PAD or PAD+egemaps")
    return text.strip(), (pad if pad == "clip" else int(pad)), extra == "egemaps"


def bench_variants(model_dir: Path, clip: Path, variants: list[str], runs: int) -> list[dict]:
    """Warm single-clip latency of decode + features for each variant of the model's feature config."""
    import dataclasses

    from ser.artifact import load_artifact
    from ser.predictor import Predictor

    artifact = load_artifact(model_dir)
    if artifact.input != "pooled" or artifact.features.encoder is None:
        raise ValueError(f"{model_dir}: --variants needs a pooled model with the encoder (this one: "
                         f"{artifact.input}, encoder {artifact.features.encoder})")
    base = Predictor.of(artifact).featuriser()  # the predictor caps BLAS threads as the product does
    rows = []
    for text in variants:
        label, pad, egemaps = parse_variant(text)
        features = dataclasses.replace(artifact.features,
                                       encoder=dataclasses.replace(artifact.features.encoder, pad_s=pad),
                                       opensmile=artifact.features.opensmile if egemaps else None)
        featuriser = dataclasses.replace(base, features=features)
        wall = timed(lambda f=featuriser: f.raw(f.load(clip)), runs)
        rows.append({"variant": label, "lat": wall, "cpu": cpu_med(wall),
                     "default": pad == artifact.features.encoder.pad_s and egemaps == bool(artifact.features.opensmile)})
    if artifact.features.opensmile:  # the floor under every variant that keeps it: openSMILE runs on one thread
        from ser.egemaps import extract_egemaps

        audio = base.load(clip)
        wall = timed(lambda: extract_egemaps(audio, artifact.features.sample_rate, artifact.features.opensmile), runs)
        rows.append({"variant": f"{artifact.features.opensmile} alone", "lat": wall, "cpu": cpu_med(wall),
                     "default": False})
    return rows


def run_predict(folder: Path, model: Path, out: Path, workers: int | None = None) -> float:
    """Wall seconds of `ser predict FOLDER --model MODEL --out OUT` in a fresh process (exit 0 or an error)."""
    import subprocess

    cmd = [sys.executable, "-m", "ser.cli", "predict", str(folder), "--model", str(model), "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
    return wall


def bench_folder(folder: Path, n_files: int, model: Path, repeats: int = 2) -> int:
    """Folder mode (see the module docstring): `ser predict FOLDER` against the naive per-file baseline."""
    import numpy as np
    import pandas as pd

    from features import naive_features  # bench/features.py
    from ser.artifact import load_artifact
    from ser.audio import load_audio
    from ser.encoder import available_cores
    from ser.predict import audio_options, expand_paths, raw_features

    files = expand_paths([folder])[:n_files]
    if len(files) < n_files:
        print(f"{folder}: only {len(files)} audio files (asked for {n_files})")
    artifact = load_artifact(model)
    enc = artifact.features.encoder
    print(f"machine: {available_cores()} cores, load average {os.getloadavg()[0]:.2f}; {len(files)} files from "
          f"{folder}; model {model} ({artifact.model.kind}, {artifact.model.framework}; features: pooled librosa"
          f"{' + ' + artifact.features.opensmile if artifact.features.opensmile else ''}"
          f"{f' + {enc.name} encoder (pad_s {enc.pad_s}, batch_size {enc.batch_size})' if enc else ''})")
    with tempfile.TemporaryDirectory(prefix="ser-bench-folder-") as tmp:
        tmp_dir = Path(tmp)
        clips = tmp_dir / folder.name
        clips.mkdir()
        for f in files:
            (clips / f.name).symlink_to(f.resolve())
        # the baseline's model call gets one of our rows (the naive vector has another width), as bench_model's
        x = artifact.scaler.transform(raw_features(artifact, load_audio(files[0], artifact.features.sample_rate,
                                                                        **audio_options(artifact)))[None])
        naive_features(str(files[0]))  # imports and caches, untimed

        def baseline() -> float:
            t0 = time.perf_counter()
            for f in files:
                naive_features(str(f))
                artifact.model.predict_proba(x)
            return time.perf_counter() - t0

        pools, ones, bases = [], [], []
        for _ in range(repeats):  # interleaved, best of each: a shared machine's load drifts between runs
            pools.append(run_predict(clips, model, tmp_dir / "pool.csv"))
            ones.append(run_predict(clips, model, tmp_dir / "one.csv", workers=1))
            bases.append(baseline())
        pool, one = pd.read_csv(tmp_dir / "pool.csv"), pd.read_csv(tmp_dir / "one.csv")
        probs = [c for c in pool.columns if c.startswith("prob_")]
        same = (pool["path"].tolist() == one["path"].tolist() and pool["status"].tolist() == one["status"].tolist()
                and np.allclose(pool[probs].to_numpy(float), one[probs].to_numpy(float), atol=1e-6, equal_nan=True))
    pool_s, one_s, base_s = min(pools), min(ones), min(bases)
    runs = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    n = len(files)
    print(f"ser predict FOLDER (pool, {available_cores()} workers): {pool_s:6.1f} s, {n / pool_s:5.1f} clips/s "
          f"(start-up and model load included; runs {runs(pools)}); {(pool['status'] == 'ok').sum()} of {n} ok")
    print(f"ser predict FOLDER --workers 1 (one process): {one_s:6.1f} s, {n / one_s:5.1f} clips/s (runs {runs(ones)})"
          f" -> pool / one process speed-up {one_s / pool_s:.2f}x; same rows: {same}")
    print(f"baseline (librosa.load 22,050 Hz + separate librosa features + model, per file, warm): {base_s:6.1f} s, "
          f"{n / base_s:5.1f} clips/s (runs {runs(bases)}) -> ratio baseline / ours = {base_s / pool_s:.2f}")
    print("note: the baseline computes only librosa features; ours also computes eGeMAPS and the encoder when the "
          "model's features include them (the model's accuracy needs them)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pooled", default="models/zoo/svc", help="pooled-feature model artefact ('' to skip)")
    ap.add_argument("--sequence", default="models/zoo/cnn1d", help="log-mel sequence model artefact ('' to skip)")
    ap.add_argument("--runs", type=int, default=50, help="timed single-clip runs (median reported)")
    ap.add_argument("--batch", type=int, default=64, help="clips for the throughput measurement")
    ap.add_argument("--threads", type=int, default=None, help="cap BLAS/TF threads (default: all cores)")
    ap.add_argument("--folder", type=Path, default=None, help="folder mode: time `ser predict` on this folder's files")
    ap.add_argument("--files", type=int, default=300, help="folder mode: how many of its files (sorted)")
    ap.add_argument("--model", type=Path, default=Path("models/best"), help="folder mode: the model artefact")
    ap.add_argument("--repeats", type=int, default=2, help="folder mode: interleaved runs of each (best reported)")
    ap.add_argument("--variants", default=None,
                    help="trade-off mode: comma-separated PAD[+egemaps] feature variants of the --pooled model")
    args = ap.parse_args(argv)
    if args.folder is not None:
        if not (args.model / "artifact.json").is_file():
            ap.error(f"{args.model} is not a model artefact (run `make run` or pass --model)")
        return bench_folder(args.folder, args.files, args.model, max(1, args.repeats))
    if args.threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    import numpy as np
    import soundfile as sf

    from features import synth_speech  # bench/features.py

    models = [Path(m) for m in (args.pooled, args.sequence) if m]
    if not models:
        ap.error("nothing to measure: give --pooled and/or --sequence")
    for m in models:
        if not (m / "artifact.json").is_file():
            ap.error(f"{m} is not a model artefact (run `dvc repro` or `ser train --model ...`, or pass another folder)")

    with tempfile.TemporaryDirectory(prefix="ser-bench-predict-") as tmp:
        tmp_dir = Path(tmp)
        clips = []
        for i in range(max(1, args.batch)):
            path = tmp_dir / f"clip_{i:03d}.wav"
            sf.write(path, synth_speech(i, SR_FILE, 3.0), SR_FILE, subtype="PCM_16")
            clips.append(path)
        long_file = tmp_dir / "long.wav"
        sf.write(long_file, np.concatenate([synth_speech(100 + i, SR_FILE, 3.0) for i in range(10)]), SR_FILE,
                 subtype="PCM_16")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; clips: 3.0-s synthetic speech "
              f"at {SR_FILE} Hz (16-bit WAV); stream: 30-s file, 3-s window, 1-s hop, 0.1-s blocks")
        if args.variants:
            if not args.pooled:
                ap.error("--variants times the --pooled model's features")
            rows = bench_variants(Path(args.pooled), clips[0], args.variants.split(","), args.runs)
            print(f"\nfeature path of {args.pooled} (decode + features, model call excluded), 3-s clip, warm:")
            for r in rows:
                print(f"  {r['variant']:>14}: median {_ms(statistics.median(r['lat']))}, p90 {_ms(p90(r['lat']))},"
                      f" CPU {_ms(r['cpu'])}{'  (the model as trained)' if r['default'] else ''}")
            print(f"\nload average after: {os.getloadavg()[0]:.2f}")
            return 0
        results = []
        for m in models:
            try:
                results.append(bench_model(m, clips, long_file, args.runs))
            except Exception as err:  # a stale artefact (older ser), a missing framework
                print(f"{m}: cannot benchmark ({type(err).__name__}: {err})")
        for r in results:
            med, base_med = statistics.median(r["lat"]), statistics.median(r["base"])
            print(f"\n{r['name']} ({r['kind']}, {r['input']} input; artefact loaded in {r['load_s']:.2f} s)")
            print(f"  latency, 3-s clip (load + features + model): median {_ms(med)}, p90 {_ms(p90(r['lat']))},"
                  f" CPU {_ms(cpu_med(r['lat']))}  [model alone {_ms(statistics.median(r['model_only']))}]"
                  f"  target < 50 ms: {'met' if med < 0.05 else 'NOT met'}")
            print(f"  baseline (librosa.load 22,050 Hz + separate librosa features + model): median {_ms(base_med)},"
                  f" CPU {_ms(cpu_med(r['base']))}  -> ours is {base_med / med:.1f}x faster"
                  f" ({cpu_med(r['base']) / cpu_med(r['lat']):.1f}x less CPU)")
            print(f"  batch of {r['n']} clips: {r['n'] / r['batch_s']:.1f} clips/s (baseline "
                  f"{r['n'] / r['base_batch_s']:.1f} clips/s -> {r['base_batch_s'] / r['batch_s']:.1f}x)")
            print(f"  stream: {r['windows']} windows over {r['audio_s']:.1f} s, RTF {r['rtf']:.3f} "
                  f"({'keeps up' if r['rtf'] < 1 else 'FALLS BEHIND'}), median {r['win_ms']:.1f} ms per window")
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
