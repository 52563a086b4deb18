"""A features run killed part-way (SIGKILL to its whole process group: flow, pool workers and the
temporary Prefect server) resumes on the next run and ends with the same tables as an uninterrupted
run; no reader ever sees a half-written part file, and the killed run's temp files are swept.

Two runs of `python -m flows.features` (each starts its own Prefect server and process pool, ~25 s
on two cores): the killed run and the resuming run. The uninterrupted reference is the same chunks
extracted in this process with `ser.feature_table.run_chunk`, which is what every flow task calls.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from filelock import FileLock
from threadpoolctl import threadpool_limits

from ser.feature_table import FeatureSettings, plan_chunks, read_features, run_chunk, stale_temp_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, demo_inputs):
    base = tmp_path_factory.mktemp("interrupt")
    root, manifest_path, params, manifest = demo_inputs(base, utterances_per_emotion=2, seed=3)
    params["runner"] = {"kind": "process", "workers": 2, "chunk_size": 8}
    params["features"] = {"logmel_frames": 50}  # default features: this test is about interruption, not features
    params_path = base / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    settings = FeatureSettings.from_params(params)
    chunks = plan_chunks(manifest, settings, params["runner"]["chunk_size"])
    with threadpool_limits(limits=1):  # as in the flow's workers (limit_blas_threads): same float rounding
        for chunk in chunks:  # the uninterrupted reference
            run_chunk(chunk, manifest, {"demo": root}, settings, base / "reference")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    # a fresh Prefect home migrates its database on the first start, which on two busy cores can
    # outlast Prefect's default 20 s wait for the temporary server
    env.update(PREFECT_HOME=str(base / "prefect-home"), DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="INFO",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
    return base, params_path, manifest_path, manifest, len(chunks), env


def _command(base: Path, params_path: Path, manifest_path: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "flows.features", "--corpus", "demo", "--manifest", str(manifest_path),
            "--out", str(base / name), "--metrics", str(base / f"metrics-{name}"), "--params-path", str(params_path)]


def _run(cmd: list[str], env: dict[str, str]) -> dict:
    """Run the flow to completion: its metrics JSON plus the planned/done/extracted chunk counts it logs."""
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    plan = re.search(r"(\d+) chunks planned, (\d+) already done, (\d+) to extract", log)
    assert plan, log[-5000:]
    out = Path(cmd[cmd.index("--metrics") + 1]) / "demo.json"
    return {**json.loads(out.read_text()), "planned": int(plan[1]), "already_done": int(plan[2]),
            "extracted_chunks": int(plan[3])}


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_tables(setup):
    base, params_path, manifest_path, manifest, n_chunks, env = setup
    assert n_chunks >= 10

    # the killed run: SIGKILL the whole process group once the first part file is in place
    cmd = _command(base, params_path, manifest_path, "features")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    pooled_dir = base / "features" / "pooled"
    try:
        deadline = time.monotonic() + 120
        while not (pooled_dir.is_dir() and _parts(pooled_dir)):
            assert proc.poll() is None, "the run ended before writing a part file"
            assert time.monotonic() < deadline, "no part file within 120 s"
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be interrupted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    _assert_group_gone(proc.pid)  # nothing leaks: no pool worker or Prefect server outlives the kill

    finished = _parts(base / "features")
    assert 0 < len(finished) < 2 * n_chunks, "the kill came too late to test resuming"
    for path in finished:  # a part file under its final name is always whole
        assert not path.name.startswith(".")
        pq.read_table(path)
    lock = base / "features" / ".ser-lock-demo"  # the stage's writer lock: a killed holder leaves it free
    with FileLock(lock).acquire(timeout=0):
        pass
    others = [p for p in (base / "features").rglob("*") if p.is_file() and p.suffix != ".parquet" and p != lock]
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in others), others  # atomic_path temps
    assert not (base / "metrics-features" / "demo.json").exists()
    # a kill in the middle of a write leaves a temp file (the kill above may or may not have hit one):
    # plant one, half-written, where a killed run would
    stale = base / "features/pooled/corpus=demo/split=train/.part-00001.parquet.k1ll3d.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"PAR1 half a parquet file")
    # the partial table reads fine: dot-files are not part of the dataset
    partial = read_features(base / "features" / "pooled")
    assert 0 < len(partial) < len(read_features(base / "reference" / "pooled"))

    resumed = _run(cmd, env)
    assert resumed["planned"] == n_chunks and resumed["already_done"] == len(_finished_chunks(finished))
    assert 0 < resumed["extracted_chunks"] < n_chunks  # it resumed: finished chunks were not redone
    assert resumed["utterances"] == len(manifest) and resumed["quarantined"] == 0
    for table in ("pooled", "logmel"):
        got, want = read_features(base / "features" / table), read_features(base / "reference" / table)
        if table == "logmel":
            got["logmel"], want["logmel"] = (df["logmel"].map(list) for df in (got, want))
        pd.testing.assert_frame_equal(got, want)
        assert [p.relative_to(base / "features" / table) for p in _parts(base / "features" / table)] == \
            [p.relative_to(base / "reference" / table) for p in _parts(base / "reference" / table)]
    leftovers = [p for p in (base / "features").rglob(".*") if p.is_file() and p != lock]
    assert leftovers == [], f"temp files of the killed run were not swept: {leftovers}"


def _finished_chunks(parts: list[Path]) -> set[str]:
    """Chunks with both part files written (pooled is written last)."""
    names = {(p.parts[-4], p.relative_to(p.parents[2]).as_posix()) for p in parts}
    return {name for kind, name in names if kind == "pooled" and ("logmel", name) in names}


def _assert_group_gone(pgid: int, wait_s: float = 10.0) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"processes of group {pgid} survived SIGKILL"
        time.sleep(0.1)


def test_stale_temp_files_are_found_per_corpus(tmp_path):
    def touch(rel: str) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        return path

    a = touch("pooled/corpus=a/split=train/.part-00000.parquet.x1.tmp")
    b = touch("logmel/corpus=b/split=val/.part-00003.parquet.y2.tmp")
    touch("pooled/corpus=a/split=train/part-00000.parquet")  # a finished part: never a temp
    touch("pooled/corpus=a/split=train/notes.tmp")           # not atomic_path's (no leading dot)
    assert stale_temp_files(tmp_path, "a") == [a]
    assert stale_temp_files(tmp_path) == sorted([a, b])
    assert stale_temp_files(tmp_path / "missing") == []
