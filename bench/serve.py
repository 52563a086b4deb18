"""HTTP API soak: N requests from C concurrent clients over loopback, against one request at a time.

    python bench/serve.py [--model models/best] [--requests 200] [--clients 8]

The server is `ser.serve` (the uvicorn configuration `ser serve` runs: one worker, deadline, keep-alive,
connection cap) in a child process on 127.0.0.1, so clients and server do not share an interpreter
lock. Clips are speech WAVs of the demo corpus (each about 1-2.5 s at 16 kHz), sent to POST /predict.
Without --model, a small SVC is trained on a fresh demo corpus first (about a minute).

Baseline, measured in the same run against the same server: single-request latency (one client,
requests one after another, median and p95 over --single requests after 5 untimed ones). Then the
soak: --requests requests spread over --clients threads, each with its own keep-alive connection;
printed: requests/s, p50/p95 latency, the ratio p50(soak) / p50(single), and every non-200 status.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def demo_model(work: Path) -> tuple[Path, list[Path]]:
    """A small SVC trained on a fresh demo corpus (speaker holdout) and the corpus's clips."""
    import yaml

    from ser.demo import write_demo_corpus
    from ser.feature_table import FeatureSettings, plan_chunks, run_chunk
    from ser.ingest import ingest_corpus
    from ser.split import build_manifest
    from ser.train import train_holdout

    root = work / "demo"
    write_demo_corpus(root, speakers=8, utterances_per_emotion=2, seed=4)
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["corpora"] = {"demo": {"format": "folder", "root": str(root)}}
    params["augment"]["copies"] = 0
    params["features"]["opensmile"] = None
    manifest, _ = build_manifest([ingest_corpus(root, "folder", params["labels"]["folder"], name="demo").manifest],
                                 protocol="speaker", ratios={"train": 0.5, "val": 0.25, "test": 0.25}, seed=1)
    settings = FeatureSettings.from_params(params)
    for chunk in plan_chunks(manifest, settings, 100):
        run_chunk(chunk, manifest, {"demo": root}, settings, work / "features")
    artifact, _, _ = train_holdout("svc", {"kind": "svc", "C": 10.0}, params, work / "features", manifest)
    return artifact.save(work / "svc"), sorted(root.rglob("*.wav"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, max_connections: int) -> subprocess.Popen:
    code = ("import sys; from ser.serve import Limits, serve; "
            f"serve(sys.argv[1], port={port}, limits=Limits(max_connections={max_connections}), log_level='warning')")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", code, str(model)], env=env)
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not answer /health within 120 s")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a model artefact folder (default: train a small demo SVC)")
    ap.add_argument("--clips", type=Path, help="a folder of WAV speech clips (default: the demo corpus)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--single", type=int, default=40, help="requests for the one-at-a-time baseline")
    args = ap.parse_args()
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        clips: list[Path] = sorted(args.clips.rglob("*.wav")) if args.clips else []
        model = args.model
        if model is None:
            print("training a small demo SVC ...", flush=True)
            model, demo_clips = demo_model(Path(tmp))
            clips = clips or demo_clips
        if not clips:
            raise SystemExit("give --clips DIR with speech WAVs (or no --model, for the demo corpus)")
        payloads = [(c.name, c.read_bytes()) for c in clips]
        port = free_port()
        server = start_server(model, port, max_connections=max(64, 2 * args.clients))
        url = f"http://127.0.0.1:{port}/predict"
        try:
            def call(client: httpx.Client, i: int) -> tuple[float, int]:
                name, data = payloads[i % len(payloads)]
                t0 = time.perf_counter()
                r = client.post(url, files={"file": (name, data, "audio/wav")}, timeout=60)
                return time.perf_counter() - t0, r.status_code

            with httpx.Client() as c:
                for i in range(5):
                    call(c, i)
                single = [call(c, i) for i in range(args.single)]
            one = [t for t, _ in single]

            per_client = [list(range(k, args.requests, args.clients)) for k in range(args.clients)]

            def worker(indices: list[int]) -> list[tuple[float, int]]:
                with httpx.Client() as c:
                    return [call(c, i) for i in indices]

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                soak = [x for part in pool.map(worker, per_client) for x in part]
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=30)
    lat = [t for t, _ in soak]
    bad = {s: sum(1 for _, x in soak + single if x == s) for s in {x for _, x in soak + single} if s != 200}
    print(f"cores: {os.cpu_count()}  clips: {len(payloads)}  model: {model.name}")
    print(f"single request (baseline, {len(one)} sequential): p50 {1000 * statistics.median(one):.1f} ms, "
          f"p95 {1000 * pct(one, 95):.1f} ms, {len(one) / sum(one):.1f} requests/s")
    print(f"soak ({len(soak)} requests, {args.clients} clients): {len(soak) / wall:.1f} requests/s, "
          f"p50 {1000 * statistics.median(lat):.1f} ms, p95 {1000 * pct(lat, 95):.1f} ms")
    print(f"ratios: throughput soak / single {len(soak) / wall / (len(one) / sum(one)):.2f}x, "
          f"p50 latency soak / single {statistics.median(lat) / statistics.median(one):.2f}x")
    print(f"non-200 answers: {bad or 'none'}")


if __name__ == "__main__":
    main()
