"""The features flow on a 2-worker Dask LocalCluster writes the same tables as the thread runner."""
from __future__ import annotations

import logging
import time

import pandas as pd
import pytest

from flows.features import features_flow, task_runner
from ser.feature_table import read_features


pytestmark = pytest.mark.slow  # starting two Dask worker processes (each importing prefect) takes ~10-20 s


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, demo_inputs):
    """The same tiny demo corpus as test_features_flow.py (8 speakers, one clip per emotion each)."""
    base = tmp_path_factory.mktemp("dask")
    _, path, params, manifest = demo_inputs(base, utterances_per_emotion=1, seed=2)
    params["runner"] = {"kind": "thread", "workers": 2, "chunk_size": 16}
    params["features"]["logmel_frames"] = 50
    return base, path, params, manifest


def _dask_processes() -> set[int]:
    """Live descendants of this process started by multiprocessing: Dask's nanny-managed worker processes.

    multiprocessing's resource tracker is excluded: one per parent process, it lives until the parent exits.
    """
    import psutil

    out = set()
    for child in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
            if child.status() != psutil.STATUS_ZOMBIE and "multiprocessing" in cmd and "resource_tracker" not in cmd:
                out.add(child.pid)
        except psutil.Error:
            continue
    return out


def _same(x: pd.DataFrame, y: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), check_exact=True)
    except AssertionError:
        return False
    return True


def test_dask_local_cluster_matches_thread_runner(prefect_harness, corpus, caplog):
    base, manifest_path, params, manifest = corpus
    before = _dask_processes()

    threaded = features_flow.with_options(task_runner=task_runner({"kind": "thread", "workers": 2}))
    local = threaded(manifest_path, base / "threads", params, "demo")

    runner = task_runner({"dask_address": "local", "workers": 2})
    assert runner.cluster_kwargs == {"n_workers": 2, "threads_per_worker": 1, "processes": True}
    caplog.set_level(logging.INFO)
    on_dask = features_flow.with_options(task_runner=runner)(manifest_path, base / "dask", params, "demo")

    summary, expected = on_dask["summary"], local["summary"]
    assert summary["chunks"] == summary["extracted_chunks"] == expected["chunks"] > 1
    for key in ("utterances", "augmented_rows", "quarantined", "feature_hash"):
        assert summary[key] == expected[key], key
    messages = [r.getMessage() for r in caplog.records]
    assert any("LocalCluster" in m for m in messages), "prefect-dask did not start a LocalCluster"
    assert sum("Register worker" in m for m in messages) >= 2  # both workers joined

    n_rows = len(manifest) + int((manifest["split"] == "train").sum()) * params["augment"]["copies"]
    for table in ("pooled", "logmel"):
        a = read_features(base / "threads" / table)
        b = read_features(base / "dask" / table)
        assert len(a) == n_rows and list(a["utt_id"]) == list(b["utt_id"])
        differ = [a["utt_id"][i] for i in range(len(a)) if not _same(a.iloc[[i]], b.iloc[[i]])]
        # An augmented copy that differs means the augmentation's random draws were disturbed: a Dask worker's
        # own threads draw from Python's global `random` while a task runs (see ser/augment.py).
        assert not differ, f"{table}: rows differ between the thread and the Dask runner: {differ}"
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(local["quarantine"].reset_index(drop=True),
                                  on_dask["quarantine"].reset_index(drop=True))

    # the LocalCluster is shut down with the flow: its worker processes exit, its nannies log their close
    deadline = time.monotonic() + 15
    while (left := _dask_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"Dask worker processes still running after the flow: {sorted(left)}"
    closed = [r.getMessage() for r in caplog.records if "Nanny at" in r.getMessage() and "closed" in r.getMessage()]
    assert len(closed) >= 2, closed
