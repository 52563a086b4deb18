"""Feature-extraction throughput: the seed notebooks' way vs the DEFAULT feature path, on the same files.

    python bench/features.py --dir DIR [--files N] [--workers W] [--chunk C] [--repeat R] [--params P]
    python bench/features.py --corpora DIR [--per-corpus K] [--files N] ...

--dir takes the first N audio files under DIR (sorted), repeating the list when DIR holds fewer
than 2N; a missing DIR is an error. Without --dir or --corpora it writes 2N synthetic speech-like
3-second WAVs at 22,050/44,100/48,000 Hz into a temporary folder. --corpora DIR samples K files
(evenly spread) from every corpus folder under DIR and adds a per-corpus table; N and 2N files are
then taken round-robin over the corpora.

1. naive: one process, file by file: librosa.load(path) at its default 22,050 Hz, then separate
   librosa.feature.mfcc(n_mfcc=40), chroma_stft, melspectrogram, spectral_contrast,
   zero_crossing_rate and rms calls on the signal (each computes its own STFT, n_fft=2048; chroma
   also estimates tuning), each averaged over frames.
2. sets: one process, file by file, the CPU time (time.process_time) of each step of the default
   path alone: decode + resample (ser.audio.load_audio with params.yaml's audio:), then every
   feature set that params.yaml's features: turns on, found from the typed params: the pooled
   librosa features and log-mel sequence (one STFT), openSMILE functionals (features.opensmile),
   the speech encoder (features.encoder, when the params have it), plus openSMILE through the
   package's own per-call path (a native instance built and freed per clip: the cost before reuse).
   The sets' widths must add up to the default vector's, so no set can be left out unnoticed.
3. default: the features stage's own chunk function (ser.feature_table.extract_chunk: decode,
   resample, every configured set, the log-mel sequence, the row frames) in a
   ProcessPoolExecutor(W), files in chunks of C, on N files and again on 2N files: peak worker RSS
   must not grow with the number of files. Files form a test split, so no augmented copies (train
   chunks add augment.copies extractions per clip); the parquet writes are not timed.

Each measurement runs in its own fresh Python process, so its peak RSS (getrusage RUSAGE_SELF for
the measuring process, RUSAGE_CHILDREN for the largest of its pool workers) is its own. Every side
warms up first (librosa's numba JIT, filter banks, the openSMILE engine, the encoder's weights) and
the timed part excludes that and the pool start-up, which is reported separately. BLAS is capped
at --blas-threads (default 1) threads for every side. The load average is printed before and after:
on shared cores the wall-clock figures move with it, the CPU ms per file much less.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AUDIO_EXTS = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
SYNTH_RATES = (22050, 44100, 48000)
SYNTH_SECONDS = 3.0


# --------------------------------------------------------------------------------------------------
# synthetic corpus


def synth_speech(seed: int, sr: int, seconds: float = SYNTH_SECONDS):
    """A deterministic speech-like signal: voiced syllables, fricatives and pauses, float32 in [-1, 1]."""
    import numpy as np
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    # f0 contour: a declining glide with a little vibrato/jitter, 90..260 Hz
    f0_base = rng.uniform(100, 220)
    f0 = f0_base * (1.15 - 0.3 * t / seconds) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    n_harm = int(min(40, (sr / 2) // (f0.max() * 1.2)))
    k = np.arange(1, n_harm + 1)[:, None]
    source = (np.sin(k * phase[None, :]) / k ** 1.2).sum(axis=0)  # glottal-ish -12 dB/oct tilt
    # three formant resonators whose centre frequencies move per syllable
    voiced = np.zeros(n)
    syll = int(sr / rng.uniform(3.5, 5.5))
    for start in range(0, n, syll):
        seg = slice(start, min(n, start + syll))
        y = source[seg]
        for fc, bw in ((rng.uniform(300, 900), 80), (rng.uniform(900, 2300), 120), (rng.uniform(2300, 3300), 180)):
            r = np.exp(-np.pi * bw / sr)
            a = [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r]
            y = lfilter([1 - r], a, y)
        voiced[seg] = y
    # syllable envelope with pauses
    env = np.clip(np.sin(np.pi * (t * sr % syll) / syll), 0, None) ** 0.7
    pauses = rng.random(n // syll + 1) < 0.2
    env *= np.repeat(~pauses, syll)[:n]
    # fricative bursts: high-passed noise at some syllable onsets
    noise = lfilter([1, -0.95], [1], rng.standard_normal(n))
    fric = np.zeros(n)
    for start in range(0, n, syll):
        if rng.random() < 0.4:
            m = min(n - start, int(0.06 * sr))
            fric[start:start + m] = np.hanning(2 * m)[m:] if m else 0
    x = voiced / (np.abs(voiced).max() + 1e-9) * env + 0.15 * noise / np.abs(noise).max() * fric
    x += 1e-3 * rng.standard_normal(n)  # room noise floor
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


def write_synthetic(folder: Path, n_files: int) -> list[Path]:
    import soundfile as sf

    paths = []
    for i in range(n_files):
        sr = SYNTH_RATES[i % len(SYNTH_RATES)]
        path = folder / f"synth_{i:04d}_{sr}.wav"
        sf.write(path, synth_speech(i, sr), sr, subtype="PCM_16")
        paths.append(path)
    return paths


def find_audio(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTS and p.is_file())


# --------------------------------------------------------------------------------------------------
# the ways (run inside a phase process)


def naive_features(path: str):
    import librosa
    import numpy as np

    y, sr = librosa.load(path)  # 22,050 Hz, mono, soxr_hq resampling
    return np.concatenate([
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).mean(axis=1),
        librosa.feature.chroma_stft(y=y, sr=sr).mean(axis=1),
        librosa.feature.melspectrogram(y=y, sr=sr).mean(axis=1),
        librosa.feature.spectral_contrast(y=y, sr=sr).mean(axis=1),
        librosa.feature.zero_crossing_rate(y).mean(axis=1),
        librosa.feature.rms(y=y).mean(axis=1),
    ])


FUSED_FIELDS = ("opensmile", "encoder")  # FeatureConfig fields that append a set to the pooled vector


def settings_of(params_path: str):
    from ser.feature_table import FeatureSettings
    from ser.params import load_params

    return FeatureSettings.from_params(load_params(params_path))


def load_clip(path: str, settings) -> "np.ndarray":  # noqa: F821
    """Decode + resample exactly as extract_chunk does (params.yaml's audio: section)."""
    from ser.audio import load_audio

    a = settings.audio
    return load_audio(path, a["sample_rate"], trim_db=a["trim_db"], normalize=a["normalize"],
                      target_rms_dbfs=a["target_rms_dbfs"], min_duration_s=a["min_duration_s"])


def feature_sets(cfg) -> list[tuple[str, object]]:
    """(name, clip -> vector) for every set the default path computes with `cfg`, each alone."""
    import dataclasses

    import numpy as np

    from ser.features import extract_all

    base = dataclasses.replace(cfg, **{f: None for f in FUSED_FIELDS if hasattr(cfg, f)})
    sets: list[tuple[str, object]] = [("librosa pooled + log-mel", lambda y: extract_all(y, base)[0])]
    if cfg.opensmile:
        from ser.egemaps import extract_egemaps

        sets.append((f"openSMILE {cfg.opensmile}", lambda y: extract_egemaps(y, cfg.sample_rate, cfg.opensmile)))
    encoder = getattr(cfg, "encoder", None)
    if encoder is not None:
        from ser.encoder import extract_encoder

        name = getattr(encoder, "name", "encoder")
        sets.append((f"encoder {name}", lambda y: np.asarray(extract_encoder([y], cfg.sample_rate, encoder)[0])))
    return sets


def package_smile(feature_set: str):
    """openSMILE's own path: Smile.process_signal builds and frees a native instance per call."""
    import warnings

    import opensmile

    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                            feature_level=opensmile.FeatureLevel.Functionals)

    def run(y, sr):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return smile.process_signal(y, sr).to_numpy().reshape(-1)
    return run


def _rss_mb(who: int) -> float:
    import resource

    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def phase_naive(paths: list[str], repeat: int) -> dict:
    import resource

    naive_features(paths[0])  # warm-up: numba JIT in librosa, filter caches
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        rows = [naive_features(p) for p in paths]
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"files": len(paths), "times": times, "cpu": cpu, "n_features": int(len(rows[0])),
            "rss_self_mb": _rss_mb(resource.RUSAGE_SELF), "rss_children_mb": None}


def phase_sets(paths: list[str], params_path: str) -> dict:
    """CPU seconds of each step of the default path alone, summed over the files (one process)."""
    import numpy as np

    from ser.features import extract_all, limit_blas_threads, n_pooled_features

    limit_blas_threads(1)
    settings = settings_of(params_path)
    cfg = settings.features
    sets = feature_sets(cfg)
    widths = {name: int(np.asarray(fn(load_clip(paths[0], settings))).size) for name, fn in sets}  # + warm-up
    if sum(widths.values()) != n_pooled_features(cfg):
        raise SystemExit(f"the default vector has {n_pooled_features(cfg)} values but the timed sets give "
                         f"{widths}: a feature set of the default path is missing from bench/features.py")
    steps: dict[str, float] = {"decode + resample": 0.0, **{name: 0.0 for name, _ in sets}}
    before = package_smile(cfg.opensmile) if cfg.opensmile else None
    if before:
        before(load_clip(paths[0], settings), cfg.sample_rate)
        steps["openSMILE, package path (before)"] = 0.0
    steps["default, all sets (extract_all)"] = 0.0
    extract_all(load_clip(paths[0], settings), cfg)
    seconds = 0.0
    t_wall = time.perf_counter()
    for path in paths:
        c0 = time.process_time()
        y = load_clip(path, settings)
        steps["decode + resample"] += time.process_time() - c0
        seconds += y.size / cfg.sample_rate
        for name, fn in sets:
            c0 = time.process_time()
            fn(y)
            steps[name] += time.process_time() - c0
        if before:
            c0 = time.process_time()
            before(y, cfg.sample_rate)
            steps["openSMILE, package path (before)"] += time.process_time() - c0
        c0 = time.process_time()
        extract_all(y, cfg)
        steps["default, all sets (extract_all)"] += time.process_time() - c0
    return {"files": len(paths), "audio_s": seconds, "cpu": steps, "widths": widths,
            "wall_s": time.perf_counter() - t_wall}


_STATE: dict = {}


def _worker_init(params_path: str, warm_path: str) -> None:
    from ser.features import extract_all, limit_blas_threads

    limit_blas_threads(1)
    settings = settings_of(params_path)
    _STATE["settings"] = settings
    extract_all(load_clip(warm_path, settings), settings.features)  # JIT, filter banks, engines, weights


def _default_chunk(chunk, rows):
    from ser.feature_table import extract_chunk

    c0 = time.process_time()
    pooled, _, quarantine = extract_chunk(chunk, rows, {"bench": Path("/")}, _STATE["settings"])
    return len(pooled), len(quarantine), pooled.shape[1], time.process_time() - c0


def _noop(_: int) -> int:
    time.sleep(0.05)
    return os.getpid()


def phase_default(paths: list[str], params_path: str, workers: int, chunk: int, repeat: int) -> dict:
    import resource
    from concurrent.futures import ProcessPoolExecutor

    import pandas as pd

    from ser.feature_table import KEY_COLUMNS, plan_chunks

    settings = settings_of(params_path)
    manifest = pd.DataFrame({
        "utt_id": [f"{i:06d}" for i in range(len(paths))], "path": [str(Path(p).resolve()) for p in paths],
        "sha1": "-", "corpus": "bench", "speaker": "s", "gender": "u", "emotion": "neutral", "split": "test", "fold": 0,
    })
    chunks = plan_chunks(manifest, settings, chunk)
    by_id = manifest.set_index("utt_id", drop=False)
    work = [(c, by_id.loc[[u for u, _, _ in c.rows]]) for c in chunks]
    t_start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(params_path, paths[0])) as pool:
        pids: set[int] = set()
        while len(pids) < workers:  # every worker started and warmed before the clock starts
            pids |= set(pool.map(_noop, range(2 * workers)))
        startup = time.perf_counter() - t_start
        times, cpu = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            done = quarantined = cpu_s = 0
            for n_rows, n_q, width, block_cpu in pool.map(_default_chunk, *zip(*work)):
                done += n_rows
                quarantined += n_q
                cpu_s += block_cpu
            times.append(time.perf_counter() - t0)
            cpu.append(cpu_s)
    if done + quarantined != len(paths):
        raise SystemExit(f"extract_chunk returned {done} rows and {quarantined} quarantined for {len(paths)} files")
    return {"files": len(paths), "times": times, "cpu": cpu, "startup_s": startup, "quarantined": quarantined,
            "n_features": int(width) - len(KEY_COLUMNS), "workers": workers, "chunk": chunk,
            "rss_self_mb": _rss_mb(resource.RUSAGE_SELF), "rss_children_mb": _rss_mb(resource.RUSAGE_CHILDREN)}


# --------------------------------------------------------------------------------------------------
# driver


def run_phase(args: argparse.Namespace, phase: str, paths: list[Path], list_dir: Path, tag: str = "") -> dict:
    listing = list_dir / f"{phase}_{tag}{len(paths)}.txt"
    listing.write_text("\n".join(str(p) for p in paths))
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.blas_threads)
    cmd = [sys.executable, __file__, "--_phase", phase, "--_list", str(listing), "--workers", str(args.workers),
           "--chunk", str(args.chunk), "--blas-threads", str(args.blas_threads), "--repeat", str(args.repeat),
           "--params", str(args.params)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"phase {phase} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def corpus_samples(root: Path, per_corpus: int) -> dict[str, list[Path]]:
    """K files per corpus folder under root, evenly spread over its sorted list."""
    samples = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found = find_audio(folder)
        if found:
            step = max(len(found) // per_corpus, 1)
            samples[folder.name] = found[::step][:per_corpus]
    return samples


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def fps(r: dict) -> float:
    return r["files"] / min(r["times"])


def cpu_ms(r: dict) -> float:
    return 1000 * min(r["cpu"]) / r["files"]


def line(name: str, r: dict) -> str:
    passes = ", ".join(f"{t:.2f}" for t in r["times"])
    children = "n/a (no pool)" if r["rss_children_mb"] is None else f"{r['rss_children_mb']:.0f} MiB"
    extra = f"; pool start-up + warm-up {r['startup_s']:.2f} s (not timed)" if "startup_s" in r else ""
    return (f"{name:<13} {r['files']:>4} files, passes {passes} s -> best {fps(r):6.1f} files/s"
            f" ({1000 * min(r['times']) / r['files']:.2f} ms/file wall, {cpu_ms(r):.2f} ms/file CPU);"
            f" {r['n_features']} features; peak RSS: process {r['rss_self_mb']:.0f} MiB,"
            f" largest worker {children}{extra}")


def sets_table(rows: list[tuple[str, dict]]) -> list[str]:
    """Markdown table: CPU ms per clip of each step, one row per sample."""
    steps = list(rows[0][1]["cpu"])
    out = ["| sample | clips | s/clip | " + " | ".join(steps) + " | clips/s (1 process, CPU) |",
           "|---|---|---|" + "---|" * len(steps) + "---|"]
    for name, r in rows:
        ms = {k: 1000 * v / r["files"] for k, v in r["cpu"].items()}
        total = ms["decode + resample"] + ms["default, all sets (extract_all)"]
        out.append(f"| {name} | {r['files']} | {r['audio_s'] / r['files']:.2f} | "
                   + " | ".join(f"{ms[k]:.2f}" for k in steps) + f" | {1000 / total:.1f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=60, help="N: files for naive, sets and the first default run (default 60)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--dir", type=Path, help="audio files under DIR instead of synthetic ones")
    src.add_argument("--corpora", type=Path, help="a folder of corpus folders: per-corpus figures too")
    ap.add_argument("--per-corpus", type=int, default=20, help="files sampled per corpus with --corpora (default 20)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="params.yaml of the default path")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the default path (default: cpu count)")
    ap.add_argument("--chunk", type=int, default=16, help="files per pool task (default 16)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed passes over the files per naive/default measurement; the best is reported (default 3)")
    ap.add_argument("--blas-threads", type=int, default=1, help="BLAS threads per process, every side (default 1)")
    ap.add_argument("--_phase", choices=["naive", "sets", "default"], help=argparse.SUPPRESS)
    ap.add_argument("--_list", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._phase:
        paths = args._list.read_text().splitlines()
        if args._phase == "naive":
            res = phase_naive(paths, args.repeat)
        elif args._phase == "sets":
            res = phase_sets(paths, str(args.params))
        else:
            res = phase_default(paths, str(args.params), args.workers, args.chunk, args.repeat)
        print(json.dumps(res))
        return 0

    if min(args.files, args.workers, args.chunk, args.repeat, args.blas_threads, args.per_corpus) < 1:
        ap.error("--files, --workers, --chunk, --repeat, --blas-threads and --per-corpus must be >= 1")
    for flag, folder in (("--dir", args.dir), ("--corpora", args.corpora)):
        if folder is not None and not folder.is_dir():
            ap.error(f"{flag} {folder}: no such folder (give a folder of audio files, e.g. a corpus's wav folder)")
    if not args.params.is_file():
        ap.error(f"--params {args.params}: no such file (run from the repository root or pass --params)")
    n = args.files
    per_corpus: list[tuple[str, list[Path]]] = []
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as tmp:
        tmp_dir = Path(tmp)
        if args.dir or args.corpora:
            if args.corpora:
                per_corpus = list(corpus_samples(args.corpora, args.per_corpus).items())
                found = [f for group in zip(*(files for _, files in per_corpus)) for f in group]  # round-robin
                what = f"{args.corpora}: {len(per_corpus)} corpora x {args.per_corpus} sampled files"
            else:
                found = find_audio(args.dir)
                what = str(args.dir)
            if not found:
                ap.error(f"no audio files ({', '.join(sorted(AUDIO_EXTS))}) under {args.dir or args.corpora}")
            source = f"{what} ({len(found)} audio files"
            source += ")" if len(found) >= 2 * n else f"; list repeated to reach {2 * n})"
            files = [found[i % len(found)] for i in range(2 * n)]
        else:
            t0 = time.perf_counter()
            files = write_synthetic(tmp_dir, 2 * n)
            source = (f"{2 * n} synthetic speech-like {SYNTH_SECONDS:g}-s WAVs at "
                      f"{'/'.join(str(r) for r in SYNTH_RATES)} Hz (written in {time.perf_counter() - t0:.1f} s)")
        settings = settings_of(str(args.params))
        cfg = settings.features
        on = ["librosa pooled"] + [f"{f}={getattr(cfg, f)}" for f in FUSED_FIELDS if getattr(cfg, f, None)]
        print(f"files:   {source}")
        print(f"default: {args.params}: {', '.join(on)}; audio {settings.audio['sample_rate']} Hz, "
              f"normalize={settings.audio['normalize']}")
        print(f"machine: workers={args.workers}, chunk={args.chunk}, BLAS threads per process={args.blas_threads}, "
              f"{load()}")

        naive = run_phase(args, "naive", files[:n], tmp_dir)
        sets = run_phase(args, "sets", files[:n], tmp_dir)
        ours_n = run_phase(args, "default", files[:n], tmp_dir)
        ours_2n = run_phase(args, "default", files[:2 * n], tmp_dir)
        by_corpus = [(name, run_phase(args, "sets", group, tmp_dir, tag=name)) for name, group in per_corpus]

    print(line("naive", naive))
    print(line("default (N)", ours_n))
    print(line("default (2N)", ours_2n))
    ratio = fps(ours_n) / fps(naive)
    print(f"throughput: naive {fps(naive):.1f} files/s (1 process), default path {fps(ours_n):.1f} files/s (N={n}), "
          f"{fps(ours_2n):.1f} files/s (2N) with {args.workers} workers -> default/naive = {ratio:.2f}x "
          f"({ratio / args.workers:.2f}x per worker)")
    print(f"CPU per file: naive {cpu_ms(naive):.2f} ms, default path {cpu_ms(ours_n):.2f} ms "
          f"-> naive/default = {cpu_ms(naive) / cpu_ms(ours_n):.2f}x")
    print(f"peak RSS N -> 2N: largest worker {ours_n['rss_children_mb']:.0f} -> {ours_2n['rss_children_mb']:.0f} MiB, "
          f"parent {ours_n['rss_self_mb']:.0f} -> {ours_2n['rss_self_mb']:.0f} MiB")
    print(f"\nCPU ms per clip, each step alone (one process, {sets['files']} files, widths {sets['widths']}):")
    print("\n".join(sets_table([("all files", sets)] + by_corpus)))
    if any("before" in k for k in sets["cpu"]):
        after = next(v for k, v in sets["cpu"].items() if k.startswith("openSMILE") and "before" not in k)
        before = sets["cpu"]["openSMILE, package path (before)"]
        print(f"openSMILE per clip: package path {1000 * before / sets['files']:.2f} ms -> reused engine "
              f"{1000 * after / sets['files']:.2f} ms ({before / after:.2f}x)")
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
