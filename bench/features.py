"""Feature-extraction throughput: the seed notebooks' way vs ser.features, on the same files.

    python bench/features.py [--files N] [--dir DIR] [--workers W] [--chunk C] [--blas-threads T]

Without --dir it writes N synthetic speech-like 3-second WAVs (a gliding harmonic voice through
moving formant resonators, syllable-rate envelope, fricative noise bursts, pauses) at 22,050,
44,100 and 48,000 Hz, mixed, into a temporary folder. With --dir it takes the first N audio files
found under DIR (sorted), repeating the list when DIR holds fewer than 2N.

1. naive: one process, file by file: librosa.load(path) at its default 22,050 Hz, then separate
   librosa.feature.mfcc(n_mfcc=40), chroma_stft, melspectrogram, spectral_contrast,
   zero_crossing_rate and rms calls on the signal (each computes its own STFT, n_fft=2048; chroma
   also estimates tuning), each averaged over frames.
2. ours: ser.audio.load_audio (soundfile + soxr HQ to 16 kHz) and ser.features.extract_pooled_vector
   (one 512-point STFT) in a ProcessPoolExecutor(W), files sent in chunks of C; run on N files and
   again on 2N files to show that peak memory does not grow with the number of files.

Each measurement runs in its own fresh Python process, so its peak RSS (getrusage RUSAGE_SELF for
the measuring process, RUSAGE_CHILDREN for the largest of its pool workers) is its own. Both sides
warm up first (one file through the naive chain: librosa's numba JIT; for ours every worker runs an
extraction in its initializer) and the timed part excludes that and the pool start-up, which is
reported separately. BLAS is capped at --blas-threads (default 1) threads for both sides: the
matrices are tiny and multi-threaded BLAS on shared cores is slower, for the naive chain as well.
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
# the two ways (run inside a phase process)


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


def _load16k(path: str, sample_rate: int):
    try:
        from ser.audio import load_audio
    except ImportError:  # the shared loader not there yet: the same steps by hand
        import numpy as np
        import soundfile as sf
        import soxr

        data, sr = sf.read(path, dtype="float32", always_2d=True)
        y = data.mean(axis=1, dtype=np.float32)
        return soxr.resample(y, sr, sample_rate, quality="HQ") if sr != sample_rate else y
    return load_audio(path, sample_rate)


_CFG = None


def _worker_init(blas_threads: int) -> None:
    global _CFG
    import numpy as np

    from ser import features

    features.limit_blas_threads(blas_threads)
    _CFG = features.FeatureConfig()
    features.extract_pooled_vector(np.random.default_rng(0).standard_normal(_CFG.sample_rate).astype(np.float32), _CFG)


def _ours_chunk(paths: list[str]):
    import numpy as np

    from ser import features

    c0 = time.process_time()
    out = np.empty((len(paths), features.n_pooled_features(_CFG)), dtype=np.float32)
    for i, path in enumerate(paths):
        out[i] = features.extract_pooled_vector(_load16k(path, _CFG.sample_rate), _CFG)
    return out, time.process_time() - c0


def _noop(_: int) -> int:
    return os.getpid()


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


def phase_ours(paths: list[str], workers: int, chunk: int, blas_threads: int, repeat: int) -> dict:
    import resource
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np

    from ser import features

    t_start = time.perf_counter()
    # warm the parent (imports, filter banks): forked workers inherit it; spawned ones redo it
    features.extract_pooled_vector(np.zeros(16000, dtype=np.float32), features.FeatureConfig())
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    result = np.empty((len(paths), features.n_pooled_features(features.FeatureConfig())), dtype=np.float32)
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(blas_threads,)) as pool:
        # start every worker (and so its warm-up) before the clock starts
        pids = set()
        while len(pids) < workers:
            pids |= set(pool.map(_noop, range(4 * workers)))
        startup = time.perf_counter() - t_start
        times, cpu = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            row, cpu_s = 0, 0.0
            for block, block_cpu in pool.map(_ours_chunk, chunks):
                result[row:row + len(block)] = block
                row += len(block)
                cpu_s += block_cpu
            times.append(time.perf_counter() - t0)
            cpu.append(cpu_s)
    assert row == len(paths) and np.isfinite(result).all()
    return {"files": len(paths), "times": times, "cpu": cpu, "startup_s": startup, "n_features": int(result.shape[1]),
            "workers": workers, "chunk": chunk, "rss_self_mb": _rss_mb(resource.RUSAGE_SELF),
            "rss_children_mb": _rss_mb(resource.RUSAGE_CHILDREN)}


# --------------------------------------------------------------------------------------------------
# driver


def run_phase(args: argparse.Namespace, phase: str, paths: list[Path], list_dir: Path) -> dict:
    listing = list_dir / f"{phase}_{len(paths)}.txt"
    listing.write_text("\n".join(str(p) for p in paths))
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.blas_threads)
    cmd = [sys.executable, __file__, "--_phase", phase, "--_list", str(listing), "--workers", str(args.workers),
           "--chunk", str(args.chunk), "--blas-threads", str(args.blas_threads), "--repeat", str(args.repeat)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=60, help="N: files for the naive run and the first ours run (default 60)")
    ap.add_argument("--dir", type=Path, help="use audio files under DIR instead of synthetic ones")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for ours (default: cpu count)")
    ap.add_argument("--chunk", type=int, default=16, help="files per pool task (default 16)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed passes over the files per measurement; the best is reported (default 5)")
    ap.add_argument("--blas-threads", type=int, default=1, help="BLAS threads per process, both sides (default 1)")
    ap.add_argument("--_phase", choices=["naive", "ours"], help=argparse.SUPPRESS)
    ap.add_argument("--_list", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._phase:
        paths = args._list.read_text().splitlines()
        if args._phase == "naive":
            res = phase_naive(paths, args.repeat)
        else:
            res = phase_ours(paths, args.workers, args.chunk, args.blas_threads, args.repeat)
        print(json.dumps(res))
        return 0

    if min(args.files, args.workers, args.chunk, args.repeat, args.blas_threads) < 1:
        ap.error("--files, --workers, --chunk, --repeat and --blas-threads must be >= 1")
    n = args.files
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as tmp:
        tmp_dir = Path(tmp)
        if args.dir:
            found = find_audio(args.dir)
            if not found:
                ap.error(f"no audio files under {args.dir}")
            source = f"{args.dir} ({len(found)} audio files"
            source += ")" if len(found) >= 2 * n else f"; list repeated to reach {2 * n})"
            files = [found[i % len(found)] for i in range(2 * n)]
        else:
            t0 = time.perf_counter()
            files = write_synthetic(tmp_dir, 2 * n)
            source = (f"{2 * n} synthetic speech-like {SYNTH_SECONDS:g}-s WAVs at "
                      f"{'/'.join(str(r) for r in SYNTH_RATES)} Hz (written in {time.perf_counter() - t0:.1f} s)")
        print(f"files:   {source}")
        print(f"machine: {os.cpu_count()} CPUs, workers={args.workers}, chunk={args.chunk}, "
              f"BLAS threads per process={args.blas_threads}, load average {os.getloadavg()[0]:.2f}")

        naive = run_phase(args, "naive", files[:n], tmp_dir)
        ours_n = run_phase(args, "ours", files[:n], tmp_dir)
        ours_2n = run_phase(args, "ours", files[:2 * n], tmp_dir)

    def fps(r: dict) -> float:
        return r["files"] / min(r["times"])

    def cpu_ms(r: dict) -> float:
        return 1000 * min(r["cpu"]) / r["files"]

    def line(name: str, r: dict) -> str:
        passes = ", ".join(f"{t:.2f}" for t in r["times"])
        children = "n/a (no pool)" if r["rss_children_mb"] is None else f"{r['rss_children_mb']:.0f} MiB"
        extra = f"; pool start-up + warm-up {r['startup_s']:.2f} s (not timed)" if "startup_s" in r else ""
        return (f"{name:<10} {r['files']:>4} files, passes {passes} s -> best {fps(r):6.1f} files/s"
                f" ({1000 * min(r['times']) / r['files']:.2f} ms/file wall, {cpu_ms(r):.2f} ms/file CPU);"
                f" {r['n_features']} features; peak RSS: process {r['rss_self_mb']:.0f} MiB,"
                f" largest worker {children}{extra}")

    print(line("naive", naive))
    print(line("ours (N)", ours_n))
    print(line("ours (2N)", ours_2n))
    ratio = fps(ours_n) / fps(naive)
    print(f"throughput: naive {fps(naive):.1f} files/s, ours {fps(ours_n):.1f} files/s (N={n}), "
          f"{fps(ours_2n):.1f} files/s (2N) -> ours/naive = {ratio:.1f}x with {args.workers} workers "
          f"({ratio / args.workers:.1f}x per worker)")
    print(f"CPU time per file (load-independent): naive {cpu_ms(naive):.2f} ms, ours {cpu_ms(ours_n):.2f} ms "
          f"-> {cpu_ms(naive) / cpu_ms(ours_n):.1f}x less CPU per file; x {args.workers} workers = "
          f"{args.workers * cpu_ms(naive) / cpu_ms(ours_n):.1f}x if the cores were free")
    print(f"peak RSS N -> 2N: largest worker {ours_n['rss_children_mb']:.0f} -> {ours_2n['rss_children_mb']:.0f} MiB, "
          f"parent {ours_n['rss_self_mb']:.0f} -> {ours_2n['rss_self_mb']:.0f} MiB")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
