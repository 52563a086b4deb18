"""Against real services started as separate processes on 127.0.0.1 (not the in-process test harness):

* a `prefect server start` with its own PREFECT_HOME and a free port; the pipeline flow served on a
  short interval fires on its schedule (schedules never fire on Prefect's ephemeral API), completes
  on a tiny DVC project, and its run and `metrics-diff` artifact are read back through the REST API;
* a `dask scheduler` with two `dask worker` processes; the features flow runs on them and writes
  the same tables as the thread runner.

Both are slow (a Prefect server takes 10-30 s to start, a scheduled run up to a minute more).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout_s: float, what: str, step_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:  # bounded
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(step_s)
    raise AssertionError(f"{what}: not within {timeout_s} s (last error: {last!r})")


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = REPO):
    """A child process in its own session (its own children go with it), stopped at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(REPO), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", DVC_NO_ANALYTICS="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false", **extra)
    return env


def test_scheduled_pipeline_run_on_a_real_prefect_server(tmp_path):
    import httpx

    from tests.flows.test_pipeline import make_project

    repo = make_project(tmp_path / "project")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = _env(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_API_URL=api)
    server_cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    serve_code = ("import sys; from flows.pipeline import pipeline_flow; "
                  "pipeline_flow.serve(name='soon', interval=5, limit=1, "
                  "parameters={'repo': sys.argv[1], 'targets': []})")
    with process(server_cmd, env, tmp_path / "server.log") as server:
        wait_until(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 120, "prefect server health")
        assert server.poll() is None
        with process([sys.executable, "-c", serve_code, str(repo)], env, tmp_path / "serve.log"):
            def completed():
                r = httpx.post(f"{api}/flow_runs/filter", timeout=10, json={
                    "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}, "limit": 5})
                r.raise_for_status()
                return r.json()

            runs = wait_until(completed, 240, "a scheduled run to finish", step_s=2)
        run = runs[0]
        log_tail = (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
        assert run["state"]["type"] == "COMPLETED", log_tail
        assert run["auto_scheduled"] is True and run["deployment_id"]  # fired by the schedule, not by hand
        deployment = httpx.get(f"{api}/deployments/{run['deployment_id']}", timeout=10).json()
        assert deployment["name"] == "soon" and deployment["schedules"][0]["schedule"]["interval"] == 5.0
        artifacts = httpx.post(f"{api}/artifacts/filter", timeout=10, json={
            "artifacts": {"flow_run_id": {"any_": [run["id"]]}, "key": {"any_": ["metrics-diff"]}}}).json()
        assert len(artifacts) == 1 and artifacts[0]["type"] == "markdown"
        # the toy project's three metric values: the baseline of a first run, or unchanged since the last
        assert "3 metric values" in artifacts[0]["data"]
        assert (repo / "metrics" / "score.json").is_file()
    assert server.poll() is not None  # stopped


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, demo_inputs):
    base = tmp_path_factory.mktemp("dask-remote")
    _, path, params, manifest = demo_inputs(base, utterances_per_emotion=1, seed=2)
    params["features"]["logmel_frames"] = 50
    return base, path, params, manifest


def test_features_flow_on_a_separate_dask_scheduler_and_two_workers(prefect_harness, corpus, tmp_path):
    import distributed

    from flows.features import features_flow, task_runner
    from ser.feature_table import read_features

    base, manifest_path, params, manifest = corpus
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = _env()
    scheduler_cmd = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                     "--no-dashboard"]
    worker_cmd = [str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                  "--nworkers", "1", "--no-dashboard"]
    with process(scheduler_cmd, env, tmp_path / "scheduler.log"), \
            process(worker_cmd, env, tmp_path / "worker1.log"), process(worker_cmd, env, tmp_path / "worker2.log"):
        with distributed.Client(address, timeout=60) as client:
            wait_until(lambda: len(client.scheduler_info()["workers"]) == 2, 120, "two dask workers")
            workers = client.scheduler_info()["workers"]
            pids = set(client.run(os.getpid).values())
        assert len(workers) == 2 and os.getpid() not in pids and len(pids) == 2
        threaded = features_flow.with_options(task_runner=task_runner({"kind": "thread", "workers": 2}))
        local = threaded(manifest_path, base / "threads", params, "demo")
        remote = features_flow.with_options(task_runner=task_runner({"dask_address": address}))(
            manifest_path, base / "remote", params, "demo")
    assert remote["summary"]["chunks"] == remote["summary"]["extracted_chunks"] == local["summary"]["chunks"]
    for key in ("utterances", "augmented_rows", "quarantined", "feature_hash"):
        assert remote["summary"][key] == local["summary"][key], key
    for table in ("pooled", "logmel"):
        pd.testing.assert_frame_equal(read_features(base / "threads" / table), read_features(base / "remote" / table),
                                      check_exact=True)
    logs = (tmp_path / "worker1.log").read_text(errors="replace") + (tmp_path / "worker2.log").read_text(errors="replace")
    assert "Registered to" in logs  # both joined the separate scheduler
